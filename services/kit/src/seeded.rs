//! Seeded bugs: deliberate resilience bugs in the reference services, for showing that
//! `faultline chaos explore` finds what hand-written scenarios miss. Each is a named switch
//! that is off unless the service runs in test mode (`<PREFIX>_TEST_MODE=true`) **and** its
//! `<PREFIX>_SEEDED_BUGS` names it (a comma-separated list). Naming one outside test mode,
//! or naming an unknown one, is a configuration error: the service does not start. With the
//! variable unset, every code path is the service's normal one.
//!
//! A service reads the variable once at start ([`read`]) and asks [`active`] where the bug
//! would be.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::config::EnvReader;

/// Every seeded bug, by name, with what it breaks.
pub const BUGS: &[(&str, &str)] = &[
    (
        ORDER_COMPENSATES_UNKNOWN_CHARGE_WITHOUT_REFUND,
        "order: a charge whose answer never came is compensated as if it had been declined: no refund",
    ),
    (
        PAYMENT_FORGETS_IDEMPOTENCY_CLAIM,
        "payment: a retried charge whose first attempt committed is refused instead of answered again",
    ),
    (
        NOTIFICATION_STALLS_ON_DUPLICATE_EVENT,
        "notification: an event it already handled is retried forever instead of skipped",
    ),
    (
        NOTIFICATION_COMMITS_BEFORE_HANDLING,
        "notification: an event's offset is committed before the event is handled: one whose handler dies in between is lost",
    ),
    (
        ORDER_BULKHEAD_LIMITS_NOTHING,
        "order: the bulkhead around payment calls admits every call",
    ),
    (
        ORDER_RECORDS_CHARGE_AFTER_CALL,
        "order: the charge attempt is recorded after the call to payment instead of before",
    ),
    (
        ORDER_NO_ATTEMPT_TIMEOUT,
        "order: its calls to payment have no per-attempt timeout",
    ),
    (
        INVENTORY_RESERVATION_NOT_IDEMPOTENT,
        "inventory: a reservation sent twice reserves twice",
    ),
    (
        INVENTORY_HOLDS_UNITS_OUTSIDE_TRANSACTION,
        "inventory: a reservation's units are held in a statement of their own, committed before the reservation is",
    ),
    (
        ORDER_RESUMES_SAGAS_ONLY_AT_START,
        "order: unfinished sagas are resumed only when the process starts; one whose creation committed while its request failed waits for a restart",
    ),
    (
        ORDER_IGNORES_COMMIT_FAILURE,
        "order: a failed commit of the stock reservation is taken for a success",
    ),
    (
        GATEWAY_ACCEPTS_UNANSWERED_ORDERS,
        "gateway: an order that order did not take (no answer, or 502, 503, 504) is answered 202 as if accepted, with no order id to follow",
    ),
];

pub const ORDER_COMPENSATES_UNKNOWN_CHARGE_WITHOUT_REFUND: &str =
    "order-compensates-unknown-charge-without-refund";
pub const PAYMENT_FORGETS_IDEMPOTENCY_CLAIM: &str = "payment-forgets-idempotency-claim";
pub const NOTIFICATION_STALLS_ON_DUPLICATE_EVENT: &str = "notification-stalls-on-duplicate-event";
pub const NOTIFICATION_COMMITS_BEFORE_HANDLING: &str = "notification-commits-before-handling";
pub const ORDER_BULKHEAD_LIMITS_NOTHING: &str = "order-bulkhead-limits-nothing";
pub const ORDER_RECORDS_CHARGE_AFTER_CALL: &str = "order-records-charge-after-call";
pub const ORDER_NO_ATTEMPT_TIMEOUT: &str = "order-no-attempt-timeout";
pub const INVENTORY_RESERVATION_NOT_IDEMPOTENT: &str = "inventory-reservation-not-idempotent";
pub const INVENTORY_HOLDS_UNITS_OUTSIDE_TRANSACTION: &str =
    "inventory-holds-units-outside-transaction";
pub const ORDER_RESUMES_SAGAS_ONLY_AT_START: &str = "order-resumes-sagas-only-at-start";
pub const ORDER_IGNORES_COMMIT_FAILURE: &str = "order-ignores-commit-failure";
pub const GATEWAY_ACCEPTS_UNANSWERED_ORDERS: &str = "gateway-accepts-unanswered-orders";

static ACTIVE: OnceLock<BTreeSet<String>> = OnceLock::new();

/// The bugs `<PREFIX>_SEEDED_BUGS` names, validated: each must be in [`BUGS`], and test mode
/// must be on. Errors are recorded in `env`.
pub fn parse(env: &mut EnvReader, test_mode: bool) -> BTreeSet<String> {
    let Some(list) = env.optional("SEEDED_BUGS") else {
        return BTreeSet::new();
    };
    let names: BTreeSet<String> = list
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return names;
    }
    if !test_mode {
        env.invalid(
            "SEEDED_BUGS",
            "to be unset unless test mode is on (seeded bugs are for showing exploration)",
        );
        return BTreeSet::new();
    }
    if let Some(unknown) = names.iter().find(|n| !BUGS.iter().any(|(b, _)| b == n)) {
        let known: Vec<&str> = BUGS.iter().map(|(b, _)| *b).collect();
        env.invalid(
            "SEEDED_BUGS",
            &format!("names from {} ({unknown:?} is none of them)", known.join(", ")),
        );
        return BTreeSet::new();
    }
    names
}

/// [`parse`], and makes the result what [`active`] answers for the rest of the process.
pub fn read(env: &mut EnvReader, test_mode: bool) {
    let names = parse(env, test_mode);
    if !names.is_empty() {
        tracing::warn!(bugs = ?names, "seeded bugs are active");
    }
    let _ = ACTIVE.set(names);
}

/// Whether seeded bug `name` is active in this process.
pub fn active(name: &str) -> bool {
    ACTIVE.get().is_some_and(|names| names.contains(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(pairs: &[(&str, &str)], test_mode: bool) -> (BTreeSet<String>, Result<(), String>) {
        let mut env = EnvReader::from_pairs("ORDER", pairs.iter().copied());
        let names = parse(&mut env, test_mode);
        (names, env.finish().map_err(|e| e.to_string()))
    }

    #[test]
    fn no_bug_is_active_unless_named_in_test_mode() {
        assert_eq!(parsed(&[], true), (BTreeSet::new(), Ok(())));
        let (names, result) = parsed(
            &[("ORDER_SEEDED_BUGS", "order-no-attempt-timeout, order-ignores-commit-failure")],
            true,
        );
        assert_eq!(result, Ok(()));
        assert_eq!(names.len(), 2);
        assert!(names.contains(ORDER_NO_ATTEMPT_TIMEOUT));
    }

    #[test]
    fn a_bug_named_outside_test_mode_or_unknown_is_a_configuration_error() {
        let (names, result) = parsed(&[("ORDER_SEEDED_BUGS", "order-no-attempt-timeout")], false);
        assert!(names.is_empty());
        let error = result.unwrap_err();
        assert!(error.contains("ORDER_SEEDED_BUGS") && error.contains("test mode"), "{error}");
        let (_, result) = parsed(&[("ORDER_SEEDED_BUGS", "teleports-money")], true);
        let error = result.unwrap_err();
        assert!(error.contains("teleports-money"), "{error}");
    }
}
