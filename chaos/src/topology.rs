//! The reference system's shape as far as faults are concerned: which services run as
//! processes, which containers hold shared servers, and which links between them run through
//! Toxiproxy and can therefore be faulted.

/// Services of the reference system; each runs as its own OS process in a chaos run.
pub const SERVICES: [&str; 5] = ["gateway", "order", "payment", "inventory", "notification"];

/// Containers holding the servers the services share.
pub const CONTAINERS: [&str; 2] = ["postgres", "kafka"];

/// Service-to-service links (each through its own proxy).
pub const SERVICE_LINKS: [(&str, &str); 3] = [
    ("gateway", "order"),
    ("order", "payment"),
    ("order", "inventory"),
];

/// Whether `client->server` is a link of the reference system: a service-to-service link, or a
/// service's link to Postgres or Kafka.
pub fn is_link(client: &str, server: &str) -> bool {
    SERVICE_LINKS.contains(&(client, server))
        || (SERVICES.contains(&client) && CONTAINERS.contains(&server))
}

/// Every link, as `client->server`.
pub fn links() -> Vec<String> {
    let mut links: Vec<String> = SERVICE_LINKS
        .iter()
        .map(|(c, s)| format!("{c}->{s}"))
        .collect();
    for service in SERVICES {
        for container in CONTAINERS {
            links.push(format!("{service}->{container}"));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_cover_service_calls_and_shared_servers() {
        assert!(is_link("order", "payment"));
        assert!(is_link("notification", "kafka"));
        assert!(!is_link("payment", "order"), "links have a direction");
        assert!(!is_link("postgres", "kafka"));
        assert_eq!(links().len(), 3 + 5 * 2);
    }
}
