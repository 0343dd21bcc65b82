//! Just enough PromQL reading to list what an expression names: its metric selectors (with
//! their label matchers) and the labels it groups by. Functions, aggregations, keywords,
//! numbers, durations, strings and Grafana's `$variables` are recognised and passed over.

/// `metric{label op "value", ...}`.
#[derive(Debug, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

#[derive(Debug, PartialEq)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// What one expression names.
#[derive(Debug, Default, PartialEq)]
pub struct Names {
    pub selectors: Vec<Selector>,
    /// Labels of `by (...)`, `without (...)`, `on (...)`, `ignoring (...)`, `group_left (...)`.
    pub grouping: Vec<String>,
}

/// Words that are never metric names here: keywords and aggregation operators (which may be
/// followed by `by (...)` rather than by their parenthesis).
const RESERVED: [&str; 22] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "atan2",
];
const GROUPING: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

pub fn names(expr: &str) -> Result<Names, String> {
    let mut lexer = Lexer { chars: expr.chars().collect(), at: 0 };
    let mut names = Names::default();
    while let Some(c) = lexer.peek() {
        match c {
            c if c.is_whitespace() => lexer.at += 1,
            '"' | '\'' | '`' => {
                lexer.string()?;
            }
            '[' => lexer.skip_past(']')?,
            '$' => lexer.variable(),
            '{' => return Err(format!("a selector without a metric name in `{expr}`")),
            c if c.is_ascii_digit() || (c == '.' && lexer.peek_at(1).is_some_and(|d| d.is_ascii_digit())) => {
                lexer.take_while(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let word = lexer.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                lexer.skip_whitespace();
                let next = lexer.peek();
                if GROUPING.contains(&word.as_str()) {
                    if next == Some('(') {
                        names.grouping.extend(lexer.label_list()?);
                    }
                } else if RESERVED.contains(&word.as_str()) || next == Some('(') {
                    // a keyword, an aggregation or a function call
                } else {
                    let matchers = if next == Some('{') { lexer.matchers()? } else { Vec::new() };
                    names.selectors.push(Selector { metric: word, matchers });
                }
            }
            _ => lexer.at += 1,
        }
    }
    Ok(names)
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn skip_whitespace(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn skip_past(&mut self, end: char) -> Result<(), String> {
        self.take_while(|c| c != end);
        self.expect(end)
    }

    fn expect(&mut self, wanted: char) -> Result<(), String> {
        match self.peek() {
            Some(c) if c == wanted => {
                self.at += 1;
                Ok(())
            }
            other => Err(format!("expected `{wanted}` at {}, found {other:?}", self.at)),
        }
    }

    /// `$name` or `${name}` (Grafana).
    fn variable(&mut self) {
        self.at += 1;
        if self.peek() == Some('{') {
            self.take_while(|c| c != '}');
            self.at += 1;
        } else {
            self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        }
    }

    /// A quoted string; backslash escapes are kept as written.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("expected a string")?;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err("an unterminated string".into()),
                Some(c) if c == quote => {
                    self.at += 1;
                    return Ok(text);
                }
                Some('\\') if quote != '`' => {
                    text.extend(self.chars[self.at..(self.at + 2).min(self.chars.len())].iter());
                    self.at += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
    }

    /// `(label, label, ...)`.
    fn label_list(&mut self) -> Result<Vec<String>, String> {
        self.expect('(')?;
        let list: String = self.take_while(|c| c != ')');
        self.expect(')')?;
        Ok(list.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
    }

    /// `{label op "value", ...}`.
    fn matchers(&mut self) -> Result<Vec<Matcher>, String> {
        self.expect('{')?;
        let mut matchers = Vec::new();
        loop {
            self.take_while(|c| c.is_whitespace() || c == ',');
            if self.peek() == Some('}') {
                self.at += 1;
                return Ok(matchers);
            }
            let label = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            self.skip_whitespace();
            let op = match (self.peek(), self.peek_at(1)) {
                (Some('='), Some('~')) => MatchOp::Regex,
                (Some('!'), Some('~')) => MatchOp::NotRegex,
                (Some('!'), Some('=')) => MatchOp::NotEqual,
                (Some('='), _) => MatchOp::Equal,
                other => return Err(format!("expected a matcher after `{label}`, found {other:?}")),
            };
            self.at += if op == MatchOp::Equal { 1 } else { 2 };
            self.skip_whitespace();
            let value = self.string()?;
            matchers.push(Matcher { label, op, value });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(expr: &str) -> Vec<String> {
        names(expr).unwrap().selectors.into_iter().map(|s| s.metric).collect()
    }

    #[test]
    fn functions_aggregations_durations_and_variables_are_not_metrics() {
        let expr = "histogram_quantile(0.99, sum by (le, step) (rate(x_bucket{job=\"a\"}[$__rate_interval]))) > 1e3";
        let read = names(expr).unwrap();
        assert_eq!(read.grouping, ["le", "step"]);
        let matcher = Matcher { label: "job".into(), op: MatchOp::Equal, value: "a".into() };
        assert_eq!(read.selectors, [Selector { metric: "x_bucket".into(), matchers: vec![matcher] }]);
        assert_eq!(metrics("max(min_over_time(a[15m])) > 0 and sum(increase(b[15m] offset 5m)) == 0"), ["a", "b"]);
        assert_eq!(metrics("absent(up{job=\"l\"} == 1)"), ["up"]);
        assert_eq!(metrics("count(up == 1) or vector(0)"), ["up"]);
        assert_eq!(metrics("sum without (instance) (c{i=~\"$instance\", s!~'x'})"), ["c"]);
    }

    #[test]
    fn matchers_are_read_with_their_operator() {
        let read = names("m{a=\"1\",b!=\"2\", c=~\"3.*\" ,d!~'4'}").unwrap();
        let ops: Vec<_> =
            read.selectors[0].matchers.iter().map(|m| (m.label.as_str(), m.op, m.value.as_str())).collect();
        assert_eq!(
            ops,
            [
                ("a", MatchOp::Equal, "1"),
                ("b", MatchOp::NotEqual, "2"),
                ("c", MatchOp::Regex, "3.*"),
                ("d", MatchOp::NotRegex, "4")
            ]
        );
        assert!(names("{__name__=\"m\"}").is_err());
        assert!(names("m{a=\"1\"").is_err());
    }
}
