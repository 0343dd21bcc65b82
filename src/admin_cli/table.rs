//! Plain-text tables: a header row and aligned columns, two spaces apart.

use std::fmt::Write;

use serde_json::Value;

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A JSON value as one cell: text as it is, `-` for null or missing, other values as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Seconds as the largest fitting unit, e.g. `42s`, `7m`, `3h`, `2d`.
pub fn age(seconds: &Value) -> String {
    let Some(seconds) = seconds.as_f64() else { return "-".to_owned() };
    let whole = seconds.max(0.0) as u64;
    match whole {
        0..=119 => format!("{whole}s"),
        120..=7_199 => format!("{}m", whole / 60),
        7_200..=172_799 => format!("{}h", whole / 3_600),
        _ => format!("{}d", whole / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_under_their_headers() {
        let mut table = Table::new(&["ID", "STATUS", "NOTE"]);
        table.row(vec!["a".into(), "approved".into(), "x".into()]);
        table.row(vec!["bbbb".into(), "-".into(), "".into()]);
        assert_eq!(table.render(), "ID    STATUS    NOTE\na     approved  x\nbbbb  -\n");
    }

    #[test]
    fn cells_and_ages_read_plainly() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("text")), "text");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(age(&json!(42.7)), "42s");
        assert_eq!(age(&json!(600)), "10m");
        assert_eq!(age(&json!(7_200)), "2h");
        assert_eq!(age(&json!(200_000)), "2d");
        assert_eq!(age(&json!(null)), "-");
    }
}
