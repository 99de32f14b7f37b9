//! Typed access to the TOML tables with the key path and the line and column of every value, so
//! that each error can say exactly where it is. Keys a table does not know are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Range, RangeInclusive};

use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroize;

use super::ConfigError;

/// One TOML table with the span of each of its values.
pub(super) type RawTable = BTreeMap<String, Spanned<toml::Value>>;

/// The document's shape. Checked beforehand on an untyped parse (see [`Source::parse`]), so
/// deserializing into it only fails on input that parse already refused.
#[derive(Deserialize)]
struct RawDocument {
    interface: Spanned<RawTable>,
    #[serde(default)]
    peer: Vec<Spanned<RawTable>>,
}

/// The text being parsed and the name its errors carry.
pub(super) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

/// A value read from the file, with where it was.
pub(super) struct Field<T> {
    pub value: T,
    pub key: String,
    pub span: Range<usize>,
}

/// The keys of one table, taken one by one after [`Fields::reject_unknown`].
pub(super) struct Fields {
    path: String,
    span: Range<usize>,
    table: RawTable,
}

impl<'a> Source<'a> {
    /// Parses the document into the `[interface]` table and the `[[peer]]` tables, refusing
    /// syntax errors, unknown top-level keys, tables of the wrong shape and tables nested in
    /// them (no key takes one).
    ///
    /// The file may hold secrets (`private_key`, `preshared_key`): every string we get from
    /// the parser and do not hand on is wiped (the untyped pass, values nobody took, values of
    /// the wrong type). What the `toml` parser allocates and frees inside itself while
    /// parsing is out of our reach; the text itself is the caller's, wiped by it.
    pub fn parse(
        &self,
        interface_keys: &[&str],
        peer_keys: &[&str],
    ) -> Result<(Fields, Vec<Fields>), ConfigError> {
        let mut untyped: toml::Table = toml::from_str(self.text).map_err(|error| {
            let message = error.message().trim().replace('\n', "; ");
            self.error(None, error.span(), format!("invalid TOML: {message}"))
        })?;
        let shape = self.check_shape(&untyped, interface_keys, peer_keys);
        untyped
            .iter_mut()
            .for_each(|(_, value)| wipe_strings(value));
        shape?;
        let document: RawDocument = toml::from_str(self.text).map_err(|error| {
            let message = error.message().trim().replace('\n', "; ");
            self.error(None, error.span(), message)
        })?;
        let interface = Fields {
            path: "interface".to_owned(),
            span: document.interface.span(),
            table: document.interface.into_inner(),
        };
        let peers = document
            .peer
            .into_iter()
            .enumerate()
            .map(|(index, table)| Fields {
                path: format!("peer[{index}]"),
                span: table.span(),
                table: table.into_inner(),
            })
            .collect();
        Ok((interface, peers))
    }

    /// The checks of [`Source::parse`] on the untyped document.
    fn check_shape(
        &self,
        untyped: &toml::Table,
        interface_keys: &[&str],
        peer_keys: &[&str],
    ) -> Result<(), ConfigError> {
        for (key, value) in untyped {
            let problem = match (key.as_str(), value) {
                ("interface", toml::Value::Table(_)) => continue,
                ("peer", toml::Value::Array(peers)) if peers.iter().all(toml::Value::is_table) => {
                    continue;
                }
                ("interface", other) => {
                    format!("must be a table ([interface]), not {}", type_name(other))
                }
                ("peer", _) => "must be an array of tables: write [[peer]], not [peer]".to_owned(),
                (other, _) => {
                    return Err(self.error(
                        Some(other),
                        None,
                        "unknown key (expected [interface] and [[peer]] tables)",
                    ));
                }
            };
            return Err(self.error(Some(key), None, problem));
        }
        let Some(toml::Value::Table(interface)) = untyped.get("interface") else {
            return Err(self.error(Some("interface"), None, "missing [interface] table"));
        };
        self.reject_nested_tables("interface", interface, interface_keys)?;
        if let Some(toml::Value::Array(peers)) = untyped.get("peer") {
            for (index, peer) in peers.iter().enumerate() {
                if let toml::Value::Table(peer) = peer {
                    self.reject_nested_tables(&format!("peer[{index}]"), peer, peer_keys)?;
                }
            }
        }
        Ok(())
    }

    /// Refuses a value that is or holds a table (`a.b = 1`, `name = { x = 1 }`): none is
    /// valid, and the typed pass keeps no spans inside them.
    fn reject_nested_tables(
        &self,
        path: &str,
        table: &toml::Table,
        known: &[&str],
    ) -> Result<(), ConfigError> {
        fn holds_table(value: &toml::Value) -> bool {
            match value {
                toml::Value::Table(_) => true,
                toml::Value::Array(items) => items.iter().any(holds_table),
                _ => false,
            }
        }
        match table.iter().find(|(_, value)| holds_table(value)) {
            None => Ok(()),
            Some((key, _)) if !known.contains(&key.as_str()) => Err(self.error(
                Some(&format!("{path}.{key}")),
                None,
                format!("unknown key (known keys: {})", known.join(", ")),
            )),
            Some((key, value)) => Err(self.error(
                Some(&format!("{path}.{key}")),
                None,
                format!("must not be {}", type_name(value)),
            )),
        }
    }

    pub fn error(
        &self,
        key: Option<&str>,
        span: Option<Range<usize>>,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            key: key.map(str::to_owned),
            location: span.map(|span| self.line_column(span.start)),
            problem: problem.into(),
        }
    }

    pub fn error_at<T>(&self, field: &Field<T>, problem: impl Into<String>) -> ConfigError {
        self.error(Some(&field.key), Some(field.span.clone()), problem)
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let line = before.matches('\n').count() + 1;
        let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }
}

impl Fields {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    fn take(&mut self, key: &str) -> Option<Field<toml::Value>> {
        self.table.remove(key).map(|value| Field {
            span: value.span(),
            value: value.into_inner(),
            key: format!("{}.{key}", self.path),
        })
    }

    pub fn string(
        &mut self,
        source: &Source,
        key: &str,
    ) -> Result<Option<Field<String>>, ConfigError> {
        self.typed(source, key, "a string", |value| match value {
            toml::Value::String(text) => Ok(text),
            other => Err(other),
        })
    }

    pub fn integer(
        &mut self,
        source: &Source,
        key: &str,
    ) -> Result<Option<Field<i64>>, ConfigError> {
        self.typed(source, key, "an integer", |value| match value {
            toml::Value::Integer(number) => Ok(number),
            other => Err(other),
        })
    }

    pub fn boolean(
        &mut self,
        source: &Source,
        key: &str,
    ) -> Result<Option<Field<bool>>, ConfigError> {
        self.typed(source, key, "true or false", |value| match value {
            toml::Value::Boolean(flag) => Ok(flag),
            other => Err(other),
        })
    }

    pub fn strings(
        &mut self,
        source: &Source,
        key: &str,
    ) -> Result<Option<Field<Vec<String>>>, ConfigError> {
        self.typed(source, key, "an array of strings", |value| match value {
            toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => Ok(items
                .into_iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()),
            other => Err(other),
        })
    }

    fn typed<T>(
        &mut self,
        source: &Source,
        key: &str,
        expected: &str,
        convert: impl FnOnce(toml::Value) -> Result<T, toml::Value>,
    ) -> Result<Option<Field<T>>, ConfigError> {
        let Some(field) = self.take(key) else {
            return Ok(None);
        };
        match convert(field.value) {
            Ok(value) => Ok(Some(Field {
                value,
                key: field.key,
                span: field.span,
            })),
            Err(mut other) => {
                let error = source.error(
                    Some(&field.key),
                    Some(field.span),
                    format!("must be {expected}, not {}", type_name(&other)),
                );
                wipe_strings(&mut other);
                Err(error)
            }
        }
    }

    /// Like [`Fields::integer`], converted to `T` and kept within `range`.
    pub fn integer_in<T>(
        &mut self,
        source: &Source,
        key: &str,
        range: RangeInclusive<T>,
    ) -> Result<Option<Field<T>>, ConfigError>
    where
        T: TryFrom<i64> + PartialOrd + fmt::Display,
    {
        let Some(field) = self.integer(source, key)? else {
            return Ok(None);
        };
        match T::try_from(field.value) {
            Ok(value) if range.contains(&value) => Ok(Some(Field {
                value,
                key: field.key,
                span: field.span,
            })),
            _ => Err(source.error_at(
                &field,
                format!(
                    "{} is out of range ({}..={})",
                    field.value,
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// Refuses the first key (in file order) that is not in `known`.
    pub fn reject_unknown(&self, source: &Source, known: &[&str]) -> Result<(), ConfigError> {
        let first_unknown = self
            .table
            .iter()
            .filter(|(key, _)| !known.contains(&key.as_str()))
            .min_by_key(|(_, value)| value.span().start);
        match first_unknown {
            None => Ok(()),
            Some((key, value)) => Err(source.error(
                Some(&format!("{}.{key}", self.path)),
                Some(value.span()),
                format!("unknown key (known keys: {})", known.join(", ")),
            )),
        }
    }
}

impl Drop for Fields {
    /// Wipes the values nobody took (a config error stops reading half-way).
    fn drop(&mut self) {
        for value in self.table.values_mut() {
            wipe_strings(value.get_mut());
        }
    }
}

/// Zeroizes every string in `value`, however deep in arrays and tables.
fn wipe_strings(value: &mut toml::Value) {
    match value {
        toml::Value::String(text) => text.zeroize(),
        toml::Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        toml::Value::Table(table) => table.iter_mut().for_each(|(_, value)| wipe_strings(value)),
        _ => {}
    }
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) && !items.is_empty() => {
            "an array of strings"
        }
        toml::Value::Array(items) if items.is_empty() => "an empty array",
        toml::Value::Array(_) => "an array with non-string items",
        toml::Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_strings_reaches_every_string_and_leaves_the_shape() {
        let mut value: toml::Value = toml::from_str(
            r#"
            private_key = "c2VjcmV0"
            list = ["a", ["b"], { psk = "c" }]
            table = { inner = { deeper = "d" }, port = 1 }
            "#,
        )
        .unwrap();
        wipe_strings(&mut value);
        let expected: toml::Value = toml::from_str(
            r#"
            private_key = ""
            list = ["", [""], { psk = "" }]
            table = { inner = { deeper = "" }, port = 1 }
            "#,
        )
        .unwrap();
        assert_eq!(value, expected);
    }
}
