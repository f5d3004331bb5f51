//! The workload: weighted statements whose parameters are drawn afresh for
//! every request, from a TOML file or a single `--sql` statement.
//!
//! ```toml
//! [[statement]]
//! name = "by_id"                    # for the report (default: statement N)
//! weight = 8                        # relative frequency (default: 1)
//! sql = "SELECT name FROM employees WHERE id = $1"
//! params = [{ int = [1, 6] }]
//!
//! [[statement]]
//! weight = 2
//! sql = "SELECT count(*) FROM employees WHERE department = ?1 AND salary > ?2"
//! params = [{ choice = ["Engineering", "Research"] }, { float = [100000, 140000] }]
//! ```
//!
//! A parameter is a literal (integer, float, string, boolean) or a generator:
//! `{ int = [lo, hi] }` and `{ float = [lo, hi] }` draw uniformly from the
//! closed range, `{ choice = [a, b, ...] }` picks one literal, `{ seq = start }`
//! counts up from `start` across all clients, and `{ text = n }` makes `n`
//! random letters and digits.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Deserialize;
use toml::Value as Toml;

/// One parameter value of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL (never produced by a file: TOML has no null).
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
}

impl Value {
    /// The value as JSON, for the HTTP gateway.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => (*b).into(),
            Self::Int(i) => (*i).into(),
            Self::Float(f) => (*f).into(),
            Self::Text(s) => s.as_str().into(),
        }
    }
}

/// How one parameter is made.
#[derive(Debug)]
enum Param {
    Literal(Value),
    Int(i64, i64),
    Float(f64, f64),
    Choice(Vec<Value>),
    Seq(AtomicI64),
    Text(usize),
}

impl Param {
    fn draw(&self, rng: &mut fastrand::Rng) -> Value {
        match self {
            Self::Literal(v) => v.clone(),
            Self::Int(lo, hi) => Value::Int(rng.i64(*lo..=*hi)),
            Self::Float(lo, hi) => Value::Float(lo + rng.f64() * (hi - lo)),
            Self::Choice(vs) => vs[rng.usize(..vs.len())].clone(),
            Self::Seq(next) => Value::Int(next.fetch_add(1, Ordering::Relaxed)),
            Self::Text(n) => Value::Text((0..*n).map(|_| rng.alphanumeric()).collect()),
        }
    }
}

/// One statement of a workload.
#[derive(Debug)]
pub struct Statement {
    /// Its name in the report.
    pub name: String,
    /// The SQL text, in the backend's placeholder syntax.
    pub sql: Arc<str>,
    weight: u64,
    params: Vec<Param>,
}

impl Statement {
    /// How many parameters each request binds.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }
}

/// Weighted statements.
#[derive(Debug)]
pub struct Workload {
    /// The statements, in file order.
    pub statements: Vec<Statement>,
    total_weight: u64,
    /// Where it came from, for messages.
    pub origin: String,
}

/// One request to make: which statement, with which values.
#[derive(Debug, Clone)]
pub struct Request {
    /// Index into [`Workload::statements`].
    pub statement: usize,
    /// The SQL text.
    pub sql: Arc<str>,
    /// Bound values, in placeholder order.
    pub params: Vec<Value>,
}

/// A workload file that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadError(pub String);

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkloadError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    statement: Vec<StatementDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementDef {
    name: Option<String>,
    weight: Option<i64>,
    sql: String,
    #[serde(default)]
    params: Vec<Toml>,
}

fn literal(v: &Toml) -> Option<Value> {
    match v {
        Toml::Integer(i) => Some(Value::Int(*i)),
        Toml::Float(f) => Some(Value::Float(*f)),
        Toml::String(s) => Some(Value::Text(s.clone())),
        Toml::Boolean(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

fn number(v: &Toml) -> Option<f64> {
    match v {
        Toml::Integer(i) => Some(*i as f64),
        Toml::Float(f) => Some(*f),
        _ => None,
    }
}

fn pair<'a>(v: &'a Toml, what: &str) -> Result<(&'a Toml, &'a Toml), String> {
    match v.as_array().map(Vec::as_slice) {
        Some([lo, hi]) => Ok((lo, hi)),
        _ => Err(format!("`{what}` takes [lo, hi]")),
    }
}

fn generator(v: &Toml) -> Result<Param, String> {
    if let Some(lit) = literal(v) {
        return Ok(Param::Literal(lit));
    }
    let Toml::Table(t) = v else {
        return Err(
            "must be a literal (integer, float, string, boolean) or a generator table".into(),
        );
    };
    let mut keys = t.iter();
    let (Some((kind, arg)), None) = (keys.next(), keys.next()) else {
        return Err(
            "a generator table has exactly one key: int, float, choice, seq or text".into(),
        );
    };
    match kind.as_str() {
        "int" => {
            let (lo, hi) = pair(arg, "int")?;
            let (Some(lo), Some(hi)) = (lo.as_integer(), hi.as_integer()) else {
                return Err("`int` takes two integers [lo, hi]".into());
            };
            if lo > hi {
                return Err(format!("`int` range [{lo}, {hi}] is empty"));
            }
            Ok(Param::Int(lo, hi))
        }
        "float" => {
            let (lo, hi) = pair(arg, "float")?;
            let (Some(lo), Some(hi)) = (number(lo), number(hi)) else {
                return Err("`float` takes two numbers [lo, hi]".into());
            };
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(format!("`float` range [{lo}, {hi}] is empty"));
            }
            Ok(Param::Float(lo, hi))
        }
        "choice" => {
            let items = arg
                .as_array()
                .ok_or("`choice` takes a list of literals")?
                .iter()
                .map(|i| literal(i).ok_or("`choice` takes a list of literals"))
                .collect::<Result<Vec<_>, _>>()?;
            if items.is_empty() {
                return Err("`choice` needs at least one value".into());
            }
            Ok(Param::Choice(items))
        }
        "seq" => {
            let start = arg
                .as_integer()
                .ok_or("`seq` takes the integer to start from")?;
            Ok(Param::Seq(AtomicI64::new(start)))
        }
        "text" => {
            let n = arg
                .as_integer()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or("`text` takes a length from 1 to 1000000")?;
            Ok(Param::Text(n))
        }
        other => Err(format!(
            "unknown generator `{other}`; use int, float, choice, seq or text"
        )),
    }
}

impl Workload {
    /// One statement without parameters, weight 1.
    pub fn single(sql: &str) -> Self {
        Self {
            statements: vec![Statement {
                name: "sql".to_owned(),
                sql: Arc::from(sql),
                weight: 1,
                params: Vec::new(),
            }],
            total_weight: 1,
            origin: "--sql".to_owned(),
        }
    }

    /// Parses a workload file's text; `origin` names it in messages.
    ///
    /// # Errors
    /// A message naming the file, the statement and what is wrong.
    pub fn parse(text: &str, origin: &str) -> Result<Self, WorkloadError> {
        let file: FileDef = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            WorkloadError(format!("{origin}{at}: {}", e.message().trim()))
        })?;
        if file.statement.is_empty() {
            return Err(WorkloadError(format!(
                "{origin}: no statements; add [[statement]] tables with `sql = \"...\"`"
            )));
        }
        let mut statements = Vec::new();
        let mut total_weight = 0u64;
        for (i, def) in file.statement.into_iter().enumerate() {
            let name = def.name.unwrap_or_else(|| format!("statement {}", i + 1));
            let fail = |what: String| WorkloadError(format!("{origin}: `{name}`: {what}"));
            if def.sql.trim().is_empty() {
                return Err(fail("`sql` is empty".into()));
            }
            let weight = match def.weight {
                None => 1,
                Some(w) if (1..=1_000_000).contains(&w) => w.unsigned_abs(),
                Some(_) => {
                    return Err(fail(
                        "`weight` must be a whole number from 1 to 1000000".into(),
                    ));
                }
            };
            let params = def
                .params
                .iter()
                .enumerate()
                .map(|(k, p)| generator(p).map_err(|e| fail(format!("parameter {}: {e}", k + 1))))
                .collect::<Result<Vec<_>, _>>()?;
            total_weight += weight;
            statements.push(Statement {
                sql: Arc::from(def.sql.as_str()),
                name,
                weight,
                params,
            });
        }
        Ok(Self {
            statements,
            total_weight,
            origin: origin.to_owned(),
        })
    }

    /// Reads and parses a workload file.
    ///
    /// # Errors
    /// When it cannot be read, or see [`parse`](Self::parse).
    pub fn load(path: &Path) -> Result<Self, WorkloadError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| WorkloadError(format!("{origin}: cannot read the workload file: {e}")))?;
        Self::parse(&text, &origin)
    }

    /// Draws the next request: a statement by weight, and its values.
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Request {
        let mut ticket = rng.u64(..self.total_weight);
        let mut index = 0;
        for (i, s) in self.statements.iter().enumerate() {
            if ticket < s.weight {
                index = i;
                break;
            }
            ticket -= s.weight;
        }
        let s = &self.statements[index];
        Request {
            statement: index,
            sql: Arc::clone(&s.sql),
            params: s.params.iter().map(|p| p.draw(rng)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[statement]]
name = "by_id"
weight = 3
sql = "SELECT $1"
params = [{ int = [1, 6] }]

[[statement]]
sql = "SELECT $1, $2, $3, $4, $5"
params = [{ choice = ["a", "b"] }, { float = [1, 2] }, { seq = 10 }, { text = 4 }, true]
"#;

    #[test]
    fn draws_statements_by_weight_with_fresh_values() {
        let w = Workload::parse(FILE, "w.toml").unwrap();
        assert_eq!(w.statements[1].name, "statement 2");
        assert_eq!(w.statements[0].param_count(), 1);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = [0u32; 2];
        let mut seqs = Vec::new();
        for _ in 0..4000 {
            let r = w.draw(&mut rng);
            counts[r.statement] += 1;
            match r.statement {
                0 => assert!(matches!(r.params[0], Value::Int(1..=6))),
                _ => {
                    assert!(matches!(&r.params[0], Value::Text(s) if s == "a" || s == "b"));
                    assert!(matches!(r.params[1], Value::Float(f) if (1.0..=2.0).contains(&f)));
                    let Value::Int(n) = r.params[2] else { panic!() };
                    seqs.push(n);
                    assert!(matches!(&r.params[3], Value::Text(s) if s.len() == 4));
                    assert_eq!(r.params[4], Value::Bool(true));
                }
            }
        }
        // 3 : 1 by weight, within sampling noise.
        let share = f64::from(counts[0]) / 4000.0;
        assert!((0.72..0.78).contains(&share), "{counts:?}");
        assert_eq!(seqs.first(), Some(&10));
        assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1));
    }

    #[test]
    fn mistakes_name_the_file_statement_and_parameter() {
        let bad = |text: &str| Workload::parse(text, "w.toml").unwrap_err().0;
        let e = bad("[[statement]]\nsql = \"x\"\nparams = [{ ints = [1, 2] }]\n");
        assert!(
            e.contains("w.toml: `statement 1`: parameter 1: unknown generator `ints`"),
            "{e}"
        );
        let e = bad("[[statement]]\nname = \"q\"\nsql = \"x\"\nparams = [{ int = [5, 1] }]\n");
        assert!(
            e.contains("`q`: parameter 1: `int` range [5, 1] is empty"),
            "{e}"
        );
        let e = bad("[[statement]]\nsql = \"x\"\nweight = 0\n");
        assert!(e.contains("`weight`"), "{e}");
        let e = bad("[[statement]]\nsql = \"x\"\nwait = 1\n");
        assert!(e.contains("w.toml:") && e.contains("wait"), "{e}");
        let e = bad("");
        assert!(e.contains("no statements"), "{e}");
        let e = bad("[[statement]]\nsql = \"x\"\nparams = [{ choice = [] }]\n");
        assert!(e.contains("at least one"), "{e}");
        let e = bad("[[statement]]\nsql = \"x\"\nparams = [[1]]\n");
        assert!(e.contains("literal"), "{e}");
    }
}
