//! Token files (`[[tenants]] token_file`, the bundled demo's
//! `data/admin-token`): read only when no one but their owner may read or
//! change them, and only when every token in them is long enough to resist
//! guessing. The rules hold for every role: a query or monitor token gives
//! away data and statistics as surely as an admin token gives away the pools.
//! Messages name the file, never a token.

use std::path::Path;

/// The shortest token a token file may hold, in characters.
pub const MIN_TOKEN_CHARS: usize = 32;

/// The tokens of `path`, one a line (blank lines skipped).
///
/// # Errors
/// A message naming the file when it cannot be read, when its group or
/// others have any access to it, or when a token in it is shorter than
/// [`MIN_TOKEN_CHARS`].
pub fn read(path: &Path) -> Result<Vec<String>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {}", e.kind()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{shown} is open to its group or others (mode {mode:03o}); a token file must be the owner's only: chmod 600 {shown}"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {}", e.kind()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.iter().any(|t| t.chars().count() < MIN_TOKEN_CHARS) {
        return Err(format!(
            "{shown} holds a token shorter than {MIN_TOKEN_CHARS} characters; use a random one, e.g. `openssl rand -hex 32`"
        ));
    }
    Ok(tokens)
}
