//! Settings of the origin request and its log line: `STRIP_HEADERS`, `LOG_FORWARDED_SAMPLE`.

use super::Collector;
use crate::config::{ForwardingConfig, names};
use crate::proxy::StripRule;

pub(super) fn forwarding(c: &mut Collector<'_>) -> Option<ForwardingConfig> {
    let strip_headers = strip_headers(c);
    let log_sample = log_sample(c);
    Some(ForwardingConfig { strip_headers: strip_headers?, log_sample: log_sample? })
}

fn strip_headers(c: &mut Collector<'_>) -> Option<Vec<StripRule>> {
    let raw = c.optional(names::STRIP_HEADERS).unwrap_or_default();
    let mut rules = Vec::new();
    let mut ok = true;
    for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match StripRule::parse(entry) {
            Some(rule) => rules.push(rule),
            None => {
                ok = false;
                c.fail(
                    names::STRIP_HEADERS,
                    format!("{entry:?} is not a header name"),
                    "list header names separated by commas; end a name with * to strip every header it starts, e.g. X-Tenant-Role,X-Corp-*",
                );
            }
        }
    }
    ok.then_some(rules)
}

fn log_sample(c: &mut Collector<'_>) -> Option<u64> {
    let Some(raw) = c.optional(names::LOG_FORWARDED_SAMPLE) else {
        return Some(1);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            c.fail(
                names::LOG_FORWARDED_SAMPLE,
                format!("{raw:?} is not a whole number of 1 or more"),
                "write N to log one forwarded request in every N (1 logs them all)",
            );
            None
        }
    }
}
