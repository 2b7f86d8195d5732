//! The links a run's clients use: each client's proxied address to a server, and the
//! Postgres server as clients reach it.

use serde::Serialize;

/// One faultable connection from a client to a server, e.g. `order->postgres`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// `client->server`.
    pub name: String,
    pub client: String,
    pub server: String,
    /// The Toxiproxy proxy carrying it (`client-server`); `None` when the link is direct.
    pub proxy: Option<String>,
    /// Where the client connects: `127.0.0.1:port`.
    pub address: String,
    /// A further server with several container ports: the proxy and address of each port
    /// after the first, which [`proxy`](Self::proxy) and [`address`](Self::address) carry.
    pub more: Vec<PortProxy>,
}

/// One more container port of a link to a further server, with a proxy of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortProxy {
    /// The container port.
    pub port: u16,
    /// The Toxiproxy proxy carrying it (`client-server-port`).
    pub proxy: String,
    /// Where the client connects: `127.0.0.1:port`.
    pub address: String,
}

impl Link {
    /// Every Toxiproxy proxy carrying the link (one per container port): what a fault on
    /// the link strikes.
    pub fn proxies(&self) -> Vec<String> {
        self.proxy
            .iter()
            .cloned()
            .chain(self.more.iter().map(|p| p.proxy.clone()))
            .collect()
    }

    /// Where the client connects to `port` (`None`: the first), if the link leads there.
    pub fn address_of(&self, port: Option<u16>) -> Option<&str> {
        match port {
            None => Some(&self.address),
            Some(port) => self
                .more
                .iter()
                .find(|p| p.port == port)
                .map(|p| p.address.as_str()),
        }
    }
}

/// Postgres credentials and its direct (unproxied) address, for administration.
#[derive(Debug, Clone, Serialize)]
pub struct PostgresServer {
    pub user: String,
    #[serde(skip)]
    pub password: String,
    pub database: String,
    pub direct_address: String,
}

impl PostgresServer {
    /// A connection URL to `address`.
    pub fn url(&self, address: &str) -> String {
        self.url_to(address, &self.database)
    }

    /// A connection URL to `database` at `address`.
    pub fn url_to(&self, address: &str, database: &str) -> String {
        format!(
            "postgres://{}:{}@{address}/{database}",
            self.user, self.password
        )
    }
}
