//! A system's shape as far as faults are concerned: which services run (as processes), which
//! shared servers they use (Postgres, Kafka, other containers), and which links between them
//! run through a proxy and can therefore be faulted.
//!
//! A [`Topology`] is data, built from a system description (the harness reads
//! `faultline.toml` and derives it); scenarios are validated against it, so a fault can only
//! target what the described system has.
//!
//! ```
//! use faultline_chaos::topology::Topology;
//! let topology = Topology::new(
//!     ["checkout", "stock"],
//!     ["postgres"],
//!     [("checkout", "stock"), ("checkout", "postgres"), ("stock", "postgres")],
//! );
//! assert!(topology.is_link("checkout", "stock"));
//! assert!(!topology.is_link("stock", "checkout"), "links have a direction");
//! assert_eq!(topology.service_links().count(), 1);
//! ```

/// A faultable connection `client->server`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// The calling side: a service.
    pub client: String,
    /// The called side: a service or a shared server.
    pub server: String,
}

impl Link {
    /// `client->server`, as scenarios and reports write it.
    pub fn name(&self) -> String {
        format!("{}->{}", self.client, self.server)
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}->{}", self.client, self.server)
    }
}

/// The services, shared servers and links of one system.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    services: Vec<String>,
    servers: Vec<String>,
    links: Vec<Link>,
    databases: Vec<String>,
    topics: Vec<String>,
}

impl Topology {
    /// A topology of `services` (in start order), shared `servers` and `links`
    /// (`(client, server)` pairs, kept in the order given, duplicates dropped).
    pub fn new<S, V, L, A, B>(
        services: impl IntoIterator<Item = S>,
        servers: impl IntoIterator<Item = V>,
        links: L,
    ) -> Self
    where
        S: Into<String>,
        V: Into<String>,
        L: IntoIterator<Item = (A, B)>,
        A: Into<String>,
        B: Into<String>,
    {
        let mut unique: Vec<Link> = Vec::new();
        for (client, server) in links {
            let link = Link {
                client: client.into(),
                server: server.into(),
            };
            if !unique.contains(&link) {
                unique.push(link);
            }
        }
        Self {
            services: services.into_iter().map(Into::into).collect(),
            servers: servers.into_iter().map(Into::into).collect(),
            links: unique,
            databases: Vec::new(),
            topics: Vec::new(),
        }
    }

    /// The same topology with these databases on its Postgres (what SQL invariants may read).
    pub fn with_databases<D: Into<String>>(
        mut self,
        databases: impl IntoIterator<Item = D>,
    ) -> Self {
        self.databases = databases.into_iter().map(Into::into).collect();
        self
    }

    /// The databases SQL invariants may read.
    pub fn databases(&self) -> &[String] {
        &self.databases
    }

    /// The same topology with these topics on its Kafka (what Kafka invariants may read).
    pub fn with_topics<T: Into<String>>(mut self, topics: impl IntoIterator<Item = T>) -> Self {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// The topics Kafka invariants may read.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The services, in start order.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The shared servers (containers), such as `postgres` and `kafka`.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// Every link.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Whether `name` is a service.
    pub fn is_service(&self, name: &str) -> bool {
        self.services.iter().any(|s| s == name)
    }

    /// Whether `name` is a shared server.
    pub fn is_server(&self, name: &str) -> bool {
        self.servers.iter().any(|s| s == name)
    }

    /// Whether `client->server` is a link.
    pub fn is_link(&self, client: &str, server: &str) -> bool {
        self.links
            .iter()
            .any(|l| l.client == client && l.server == server)
    }

    /// The links from one service to another (where resilient clients, and their circuit
    /// breakers, live).
    pub fn service_links(&self) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(|l| self.is_service(&l.server))
    }

    /// Every link's name, `client->server`.
    pub fn link_names(&self) -> Vec<String> {
        self.links.iter().map(Link::name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Topology {
        Topology::new(
            ["stock", "checkout"],
            ["postgres", "kafka"],
            [
                ("checkout", "stock"),
                ("checkout", "postgres"),
                ("stock", "postgres"),
                ("checkout", "kafka"),
                ("checkout", "stock"),
            ],
        )
    }

    #[test]
    fn links_have_a_direction_and_are_listed_once() {
        let t = shop();
        assert!(t.is_link("checkout", "stock"));
        assert!(t.is_link("stock", "postgres"));
        assert!(!t.is_link("stock", "checkout"));
        assert!(!t.is_link("postgres", "kafka"));
        assert!(!t.is_link("stock", "kafka"), "only the links given exist");
        assert_eq!(t.links().len(), 4);
        assert_eq!(
            t.link_names(),
            [
                "checkout->stock",
                "checkout->postgres",
                "stock->postgres",
                "checkout->kafka"
            ]
        );
    }

    #[test]
    fn service_links_are_those_between_services() {
        let t = shop();
        let names: Vec<String> = t.service_links().map(Link::name).collect();
        assert_eq!(names, ["checkout->stock"]);
        assert!(t.is_service("stock") && !t.is_service("postgres"));
        assert!(t.is_server("kafka") && !t.is_server("checkout"));
    }
}
