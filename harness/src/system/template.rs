//! Values with placeholders (`"{postgres.url:orders}"`), parsed once when a description is
//! read and resolved when the stack knows the addresses it hands out.
//!
//! | placeholder | becomes | link it makes |
//! |---|---|---|
//! | `{port}` | the service's own port on 127.0.0.1 | — |
//! | `{postgres.url:DB}` | `postgres://user:password@127.0.0.1:PORT/DB`, through the service's proxy | `<service>->postgres` |
//! | `{postgresql.url:DB}` | the same with the scheme `postgresql://` | `<service>->postgres` |
//! | `{postgres.jdbc:DB}` | `jdbc:postgresql://127.0.0.1:PORT/DB?user=…&password=…`, the same connection as a JDBC URL | `<service>->postgres` |
//! | `{postgres.host}`, `{postgres.port}`, `{postgres.user}`, `{postgres.password}` | the parts of that URL | `<service>->postgres` |
//! | `{kafka.bootstrap}` | `127.0.0.1:PORT`, the service's own Kafka proxy | `<service>->kafka` |
//! | `{link:A->B}` | `http://127.0.0.1:PORT`, the proxy of service A's link to B, a service or a [container](super) (A: the service whose setting this is, or another it hands the address to) | `A->B` |
//! | `{address:A->B}` | `127.0.0.1:PORT`, the same proxy without a scheme (for what does not speak HTTP) | `A->B` |
//! | `{link:A->B:PORT}`, `{address:A->B:PORT}` | the same for one more port of a container B that has several | `A->B` |
//! | `{bin:NAME}` | a binary cargo built: `FAULTLINE_SERVICE_BIN_DIR/NAME`, else next to the running executable's target folder | — |
//! | `{dir}` | the folder of the description file | — |
//! | `{env:NAME}` | the environment variable `NAME` of the faultline process (an error at start when unset) | — |
//! | `{env:NAME:-DEFAULT}` | the same, or `DEFAULT` when it is unset or empty | — |
//!
//! `{{` and `}}` stand for literal braces.

/// A placeholder inside a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{port}`.
    Port,
    /// `{postgres.url:DB}`.
    PostgresUrl(String),
    /// `{postgresql.url:DB}`: the same URL with the scheme `postgresql://`, which some
    /// libraries (SQLAlchemy) require.
    PostgresqlUrl(String),
    /// `{postgres.jdbc:DB}`: the same connection as a JDBC URL (`jdbc:postgresql://HOST:PORT/DB`
    /// with the user and password as parameters), for JVM services and Flyway.
    PostgresJdbc(String),
    /// `{postgres.host}`.
    PostgresHost,
    /// `{postgres.port}`.
    PostgresPort,
    /// `{postgres.user}`.
    PostgresUser,
    /// `{postgres.password}`.
    PostgresPassword,
    /// `{kafka.bootstrap}`.
    KafkaBootstrap,
    /// `{link:client->server}` (`url`: as `http://host:port`) or `{address:client->server}`
    /// (as `host:port`); either with `:PORT` after the server for a further port of a
    /// container with several.
    Link {
        client: String,
        server: String,
        port: Option<u16>,
        url: bool,
    },
    /// `{bin:NAME}`.
    Bin(String),
    /// `{dir}`.
    Dir,
    /// `{env:NAME}`, or `{env:NAME:-DEFAULT}`.
    Env {
        name: String,
        default: Option<String>,
    },
}

impl Placeholder {
    /// The server this placeholder connects its service to, if any: `postgres`, `kafka`, or
    /// the called service of a `{link:…}`.
    pub fn server(&self) -> Option<&str> {
        match self {
            Self::PostgresUrl(_)
            | Self::PostgresqlUrl(_)
            | Self::PostgresJdbc(_)
            | Self::PostgresHost
            | Self::PostgresPort
            | Self::PostgresUser
            | Self::PostgresPassword => Some("postgres"),
            Self::KafkaBootstrap => Some("kafka"),
            Self::Link { server, .. } => Some(server),
            _ => None,
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text taken as it is.
    Text(String),
    /// A placeholder resolved at start.
    Placeholder(Placeholder),
}

/// A string with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// What the placeholders of one service resolve to.
pub trait Resolve {
    /// The text for `placeholder`, or why there is none.
    fn resolve(&self, placeholder: &Placeholder) -> Result<String, String>;
}

const KNOWN: &str = "{port}, {postgres.url:DB}, {postgresql.url:DB}, {postgres.jdbc:DB}, {postgres.host}, {postgres.port}, \
    {postgres.user}, {postgres.password}, {kafka.bootstrap}, {link:CLIENT->SERVER}, \
    {address:CLIENT->SERVER}, {link:CLIENT->SERVER:PORT}, {bin:NAME}, {dir}, {env:NAME}";

impl Template {
    /// Parses `text`; the error says which placeholder is wrong and what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        use faultline_chaos::scenario::fields::{split_braces, Braced};
        let segments = split_braces(text)?
            .into_iter()
            .map(|piece| match piece {
                Braced::Text(literal) => Ok(Segment::Text(literal)),
                Braced::Placeholder(inner) => parse_placeholder(inner).map(Segment::Placeholder),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { segments })
    }

    /// The placeholders, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder(p) => Some(p),
            Segment::Text(_) => None,
        })
    }

    /// The text with every placeholder resolved.
    pub fn render(&self, values: &dyn Resolve) -> Result<String, String> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Placeholder(p) => out.push_str(&values.resolve(p)?),
            }
        }
        Ok(out)
    }
}

/// The value of `{env:NAME}` or `{env:NAME:-DEFAULT}` in faultline's own environment: the
/// default when the variable is unset or empty, an error when it is unset with none.
pub fn environment_value(name: &str, default: Option<&str>) -> Result<String, String> {
    match (std::env::var(name), default) {
        (Ok(value), _) if !value.is_empty() || default.is_none() => Ok(value),
        (_, Some(default)) => Ok(default.to_string()),
        (Err(_), None) => Err(format!(
            "{{env:{name}}}: the variable {name} is not set for faultline"
        )),
        (Ok(value), None) => Ok(value),
    }
}

fn parse_placeholder(inner: &str) -> Result<Placeholder, String> {
    let (head, argument) = match inner.split_once(':') {
        Some((head, argument)) => (head.trim(), Some(argument.trim())),
        None => (inner.trim(), None),
    };
    let needs = |what: &str| -> Result<String, String> {
        match argument {
            Some(a) if !a.is_empty() => Ok(a.to_string()),
            _ => Err(format!(
                "placeholder {{{inner}}} needs {what}: {{{head}:…}}"
            )),
        }
    };
    let bare = |p: Placeholder| -> Result<Placeholder, String> {
        match argument {
            None => Ok(p),
            Some(_) => Err(format!("placeholder {{{head}}} takes no argument")),
        }
    };
    match head {
        "port" => bare(Placeholder::Port),
        "dir" => bare(Placeholder::Dir),
        "postgres.url" => Ok(Placeholder::PostgresUrl(needs("a database name")?)),
        "postgresql.url" => Ok(Placeholder::PostgresqlUrl(needs("a database name")?)),
        "postgres.jdbc" => Ok(Placeholder::PostgresJdbc(needs("a database name")?)),
        "postgres.host" => bare(Placeholder::PostgresHost),
        "postgres.port" => bare(Placeholder::PostgresPort),
        "postgres.user" => bare(Placeholder::PostgresUser),
        "postgres.password" => bare(Placeholder::PostgresPassword),
        "kafka.bootstrap" => bare(Placeholder::KafkaBootstrap),
        "bin" => Ok(Placeholder::Bin(needs("a binary's name")?)),
        "env" => {
            let argument = needs("a variable's name")?;
            let (name, default) = match argument.split_once(":-") {
                Some((name, default)) => (name.trim().to_string(), Some(default.to_string())),
                None => (argument, None),
            };
            if name.is_empty() {
                return Err(format!("placeholder {{{inner}}} needs a variable's name"));
            }
            Ok(Placeholder::Env { name, default })
        }
        "link" | "address" => {
            let link = needs("a link, CLIENT->SERVER")?;
            match link.split_once("->") {
                Some((client, server))
                    if !client.trim().is_empty() && !server.trim().is_empty() =>
                {
                    let (server, port) = match server.split_once(':') {
                        None => (server, None),
                        Some((server, port)) => match port.trim().parse::<u16>() {
                            Ok(port) if port > 0 => (server, Some(port)),
                            _ => {
                                return Err(format!(
                                    "placeholder {{{inner}}}: expected a container port (1–65535) after the server, such as {{{head}:order->cache:6379}}"
                                ))
                            }
                        },
                    };
                    let (client, server) = (client.trim().to_string(), server.trim().to_string());
                    Ok(Placeholder::Link {
                        client,
                        server,
                        port,
                        url: head == "link",
                    })
                }
                _ => Err(format!(
                    "placeholder {{{inner}}}: expected a link such as {{{head}:order->payment}}"
                )),
            }
        }
        _ => Err(format!(
            "unknown placeholder {{{inner}}}; known placeholders: {KNOWN}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Resolve for Fixed {
        fn resolve(&self, p: &Placeholder) -> Result<String, String> {
            match p {
                Placeholder::Port => Ok("4000".into()),
                Placeholder::PostgresUrl(db) => Ok(format!("postgres://u:p@127.0.0.1:5/{db}")),
                Placeholder::PostgresqlUrl(db) => Ok(format!("postgresql://u:p@127.0.0.1:5/{db}")),
                Placeholder::PostgresJdbc(db) => Ok(format!("jdbc:postgresql://127.0.0.1:5/{db}?user=u&password=p")),
                Placeholder::Link {
                    client,
                    server,
                    port: None,
                    url: true,
                } => Ok(format!("http://{client}-{server}")),
                other => Err(format!("no value for {other:?}")),
            }
        }
    }

    #[test]
    fn placeholders_render_between_literal_text() {
        let t = Template::parse("127.0.0.1:{port}").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "127.0.0.1:4000");
        let t = Template::parse("{postgres.url:orders}?sslmode=disable").unwrap();
        assert_eq!(
            t.render(&Fixed).unwrap(),
            "postgres://u:p@127.0.0.1:5/orders?sslmode=disable"
        );
        let t = Template::parse("{postgresql.url:orders}").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "postgresql://u:p@127.0.0.1:5/orders");
        assert_eq!(t.placeholders().next().and_then(Placeholder::server), Some("postgres"));
        let t = Template::parse("{postgres.jdbc:orders}").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "jdbc:postgresql://127.0.0.1:5/orders?user=u&password=p");
        assert_eq!(t.placeholders().next().and_then(Placeholder::server), Some("postgres"));
        let t = Template::parse("{link: order -> payment }/v1").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "http://order-payment/v1");
        let t = Template::parse("{env:FAULTLINE_TEST_SURELY_UNSET:-on}").unwrap();
        assert_eq!(
            t.placeholders().next(),
            Some(&Placeholder::Env {
                name: "FAULTLINE_TEST_SURELY_UNSET".into(),
                default: Some("on".into())
            })
        );
        let t = Template::parse("{{literal}} and }}").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "{literal} and }");
        assert_eq!(t.placeholders().count(), 0);
    }

    #[test]
    fn placeholders_name_the_server_they_connect_to() {
        let t = Template::parse(
            "{postgres.host}:{postgres.port} {kafka.bootstrap} {link:a->b} {address:a->cache}",
        )
        .unwrap();
        let servers: Vec<_> = t.placeholders().filter_map(|p| p.server()).collect();
        assert_eq!(servers, ["postgres", "postgres", "kafka", "b", "cache"]);
    }

    #[test]
    fn a_link_may_name_a_further_port_of_its_server() {
        let t = Template::parse("{address:a->cache:8001} {link: a -> cache }").unwrap();
        let found: Vec<_> = t.placeholders().cloned().collect();
        assert_eq!(
            found,
            [
                Placeholder::Link {
                    client: "a".into(),
                    server: "cache".into(),
                    port: Some(8001),
                    url: false,
                },
                Placeholder::Link {
                    client: "a".into(),
                    server: "cache".into(),
                    port: None,
                    url: true,
                }
            ]
        );
        assert_eq!(found[0].server(), Some("cache"));
    }

    #[test]
    fn malformed_placeholders_say_what_is_allowed() {
        for (text, says) in [
            (
                "{nope}",
                "unknown placeholder {nope}; known placeholders: {port}",
            ),
            ("{postgres.url}", "needs a database name"),
            ("{postgres.url:}", "needs a database name"),
            ("{port:1}", "takes no argument"),
            ("{link:order}", "expected a link such as"),
            ("{link:->x}", "expected a link such as"),
            ("{address:cache}", "expected a link such as {address:"),
            ("{address:a->cache:redis}", "expected a container port (1–65535)"),
            ("{link:a->cache:0}", "expected a container port"),
            ("abc{port", "an unclosed `{`"),
            ("abc}", "a lone `}`"),
        ] {
            let error = Template::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
