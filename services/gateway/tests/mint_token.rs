//! `gateway mint-token`: the token a workload's `{command:…}` header gets is one a gateway
//! with the same secret and audience accepts, and bad flags exit 2 without printing a token.

use std::process::Command;

use faultline_gateway::auth::Authenticator;

fn gateway(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .env_remove("GATEWAY_JWT_SECRET")
        .env_remove("GATEWAY_JWT_AUDIENCE")
        .output()
        .expect("the gateway binary runs")
}

#[test]
fn a_minted_token_is_accepted_by_a_gateway_with_the_same_secret_only() {
    let out = gateway(&["mint-token", "--secret", "s3cret", "--subject", "load-7", "--role", "orders:read"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let principal = Authenticator::new("s3cret", "faultline").verify(token).unwrap();
    assert_eq!(principal.subject, "load-7");
    assert_eq!(principal.roles, ["orders:read"]);
    assert!(Authenticator::new("other", "faultline").verify(token).is_err());
    assert!(Authenticator::new("s3cret", "elsewhere").verify(token).is_err());
}

#[test]
fn by_default_a_token_may_place_and_read_orders() {
    let out = gateway(&["mint-token", "--secret", "s3cret"]);
    let token = String::from_utf8(out.stdout).unwrap();
    let principal = Authenticator::new("s3cret", "faultline").verify(token.trim()).unwrap();
    assert_eq!(principal.roles, ["orders:write", "orders:read"]);
}

#[test]
fn a_missing_secret_or_a_bad_ttl_exits_2_and_prints_no_token() {
    for args in [
        &["mint-token"][..],
        &["mint-token", "--secret", ""],
        &["mint-token", "--secret", "s", "--ttl-secs", "0"],
        &["mint-token", "--secret", "s", "--ttl-secs", "soon"],
    ] {
        let out = gateway(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
