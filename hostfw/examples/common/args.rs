//! `--name value` options of the benchmark binaries (included with
//! `#[path]` by each example that takes options).

use anyhow::Context as _;

/// `--name value` options.
pub struct Args(pub Vec<String>);

impl Args {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }

    pub fn req<T: std::str::FromStr>(&self, name: &str) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let v = self
            .get(name)
            .with_context(|| format!("{name} is required"))?;
        v.parse().map_err(|e| anyhow::anyhow!("{name} {v}: {e}"))
    }

    pub fn opt<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} {v}: {e}")),
            None => Ok(default),
        }
    }
}
