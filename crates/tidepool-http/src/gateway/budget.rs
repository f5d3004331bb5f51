//! How much of a result a request may return: at most `max_rows` rows per
//! statement and `max_result_bytes` bytes of JSON for all its statements
//! together, counted row by row as the rows are read, so that reading stops
//! at the first row that does not fit.

// Rows fetched in batches and JSON sizes are PostgreSQL's part.
#![cfg_attr(not(feature = "postgres"), allow(dead_code))]
use serde_json::Value;

use super::{GatewayError, QueryLimits, Truncation};

/// What [`Budget::admit`] decided about one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// It fits: keep it and read on.
    Fits,
    /// It does not: stop reading; the result is cut short.
    Cut,
}

/// The rows and bytes a request's results may still take: rows per
/// statement, bytes for the whole request.
#[derive(Debug)]
pub(super) struct Budget {
    max_rows: usize,
    rows_left: usize,
    bytes_left: usize,
    max_bytes: usize,
    /// Rows admitted for the current statement.
    rows: usize,
    /// Whether any statement of the request has had a row admitted.
    any_rows: bool,
    /// Why the result was cut short, once it was.
    pub(super) cut: Option<Truncation>,
}

impl Budget {
    pub(super) fn new(limits: &QueryLimits) -> Self {
        Self {
            max_rows: limits.max_rows,
            rows_left: limits.max_rows,
            bytes_left: limits.max_result_bytes,
            max_bytes: limits.max_result_bytes,
            rows: 0,
            any_rows: false,
            cut: None,
        }
    }

    /// Starts a statement of the request: `max_rows` rows of its own, and
    /// the bytes the earlier statements left.
    pub(super) fn next_statement(&mut self) {
        self.rows_left = self.max_rows;
        self.rows = 0;
        self.cut = None;
    }

    /// Rows still wanted, counting the one that tells whether there are
    /// more than `max_rows`.
    pub(super) fn rows_wanted(&self) -> usize {
        self.rows_left.saturating_add(1)
    }

    /// The byte limit of the whole request.
    #[cfg(feature = "sqlite")]
    pub(super) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes still free.
    pub(super) fn bytes_left(&self) -> usize {
        self.bytes_left
    }

    /// Rows of the current statement admitted so far.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Takes a row of `bytes` (as JSON), or says the result stops before
    /// it.
    ///
    /// # Errors
    /// [`GatewayError::ResultTooLarge`] when the request's very first row
    /// is larger than the whole byte limit: nothing could be returned.
    pub(super) fn admit(&mut self, bytes: usize) -> Result<Admit, GatewayError> {
        if self.rows_left == 0 {
            self.cut = Some(Truncation::MaxRows);
            return Ok(Admit::Cut);
        }
        if bytes > self.bytes_left {
            if !self.any_rows {
                return Err(GatewayError::ResultTooLarge(self.max_bytes));
            }
            self.cut = Some(Truncation::MaxResultBytes);
            return Ok(Admit::Cut);
        }
        self.rows_left -= 1;
        self.bytes_left -= bytes;
        self.rows += 1;
        self.any_rows = true;
        Ok(Admit::Fits)
    }
}

/// The size of a row of values as JSON text: `[a,b,c]`.
pub(super) fn row_size(values: impl IntoIterator<Item = usize>) -> usize {
    let (sum, n) = values.into_iter().fold((0_usize, 0_usize), |(sum, n), v| {
        (sum.saturating_add(v), n + 1)
    });
    // Brackets, and a comma between each two values.
    sum.saturating_add(2 + n.saturating_sub(1))
}

/// The length of `s` as a JSON string: its quotes, and the escapes
/// `serde_json` writes (`\"`, `\\`, `\n` and the like take two bytes, other
/// control characters six, as `\u0001`).
pub(super) fn json_str_len(s: &str) -> usize {
    s.bytes().fold(2_usize, |n, b| {
        n.saturating_add(match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
    })
}

/// How many bytes `v` takes as JSON text.
pub(super) fn json_size(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => json_str_len(s),
        Value::Array(items) => row_size(items.iter().map(json_size)),
        // `"key":value`, comma-separated, in braces.
        Value::Object(map) => row_size(
            map.iter()
                .map(|(k, v)| json_str_len(k).saturating_add(1 + json_size(v))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn limits(max_rows: usize, max_result_bytes: usize) -> QueryLimits {
        QueryLimits {
            max_rows,
            max_result_bytes,
            statement_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn rows_stop_at_whichever_limit_comes_first() {
        let mut b = Budget::new(&limits(2, 1000));
        assert_eq!(b.admit(10).unwrap(), Admit::Fits);
        assert_eq!(b.admit(10).unwrap(), Admit::Fits);
        assert_eq!(b.admit(10).unwrap(), Admit::Cut);
        assert_eq!(b.cut, Some(Truncation::MaxRows));

        let mut b = Budget::new(&limits(100, 25));
        assert_eq!(b.admit(10).unwrap(), Admit::Fits);
        assert_eq!(b.admit(10).unwrap(), Admit::Fits);
        assert_eq!(b.admit(10).unwrap(), Admit::Cut);
        assert_eq!((b.cut, b.rows()), (Some(Truncation::MaxResultBytes), 2));
    }

    #[test]
    fn statements_share_the_bytes_and_count_their_own_rows() {
        let mut b = Budget::new(&limits(2, 25));
        assert_eq!(b.admit(10).unwrap(), Admit::Fits);
        assert_eq!(b.admit(10).unwrap(), Admit::Fits);
        b.next_statement();
        assert_eq!(b.admit(5).unwrap(), Admit::Fits);
        assert_eq!(b.admit(1).unwrap(), Admit::Cut);
        assert_eq!((b.cut, b.rows()), (Some(Truncation::MaxResultBytes), 1));
        b.next_statement();
        assert_eq!(
            b.admit(26).unwrap(),
            Admit::Cut,
            "not the request's first row"
        );
        assert_eq!(b.cut, Some(Truncation::MaxResultBytes));
    }

    #[test]
    fn a_first_row_larger_than_the_limit_is_an_error() {
        let mut b = Budget::new(&limits(100, 25));
        assert_eq!(b.admit(26).unwrap_err(), GatewayError::ResultTooLarge(25));
    }

    #[test]
    fn sizes_are_those_of_the_json_text() {
        let v = json!([null, true, 12, "abc", {"k": [1, 2]}, "q\"b\\n\n\u{1}\u{7f}é", {"\"": 1}]);
        assert_eq!(json_size(&v), v.to_string().len());
    }
}
