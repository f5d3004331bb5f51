//! Configuration error messages that quote no value.
//!
//! serde's messages name what they found (`invalid type: string "…",
//! expected …`, `unknown variant `…`, expected …`), and a value may have
//! come from the environment — a token, a password. [`scrub`] keeps the
//! kind of value that was found and what was expected, and drops the value
//! itself; as a last line, every value interpolated from the environment
//! that still appears is masked.

/// `message` without the values it quotes. `interpolated` holds the values
/// `${VAR}` took from the environment.
pub(super) fn scrub(message: &str, interpolated: &[String]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while !rest.is_empty() {
        let next = ["invalid type: ", "invalid value: ", "unknown variant "]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min_by_key(|(i, _)| *i);
        let Some((at, prefix)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at + prefix.len()]);
        let found = &rest[at + prefix.len()..];
        // What was found runs to ", expected" (serde's wording), or to the
        // end of the message.
        let end = found.find(", expected").unwrap_or(found.len());
        let kind = found[..end]
            .split(['"', '`', '\''])
            .next()
            .unwrap_or_default()
            .trim_end();
        if prefix == "unknown variant " {
            // `unknown variant `x`, expected …`: only the quoted name.
            out.truncate(out.len() - 1);
        } else {
            out.push_str(if kind.is_empty() { "a value" } else { kind });
        }
        rest = &found[end..];
    }
    for value in interpolated {
        if value.chars().count() >= 4 && out.contains(value.as_str()) {
            out = out.replace(value.as_str(), tidepool_http::MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn found_values_are_dropped_and_expectations_kept() {
        let none: &[String] = &[];
        assert_eq!(
            scrub(
                r#"invalid type: string "tok-123", expected a sequence"#,
                none
            ),
            "invalid type: string, expected a sequence"
        );
        assert_eq!(
            scrub("invalid type: integer `5`, expected a string", none),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            scrub(
                "unknown variant `tok-123`, expected one of `lazy`, `eager`",
                none
            ),
            "unknown variant, expected one of `lazy`, `eager`"
        );
        assert_eq!(
            scrub(r#"invalid value: string "5x", expected a duration"#, none),
            "invalid value: string, expected a duration"
        );
        assert_eq!(
            scrub("unknown field `max_sise`, expected one of `max_size`", none),
            "unknown field `max_sise`, expected one of `max_size`"
        );
        assert_eq!(
            scrub("invalid socket address syntax", none),
            "invalid socket address syntax"
        );
    }

    #[test]
    fn interpolated_values_are_masked_wherever_they_appear() {
        let env = ["hunter2-from-env".to_owned(), "ab".to_owned()];
        assert_eq!(
            scrub("cannot parse hunter2-from-env here (ab)", &env),
            "cannot parse *** here (ab)"
        );
    }
}
