//! The alert rules (deploy/prometheus/alerts.yml) and the dashboard (deploy/grafana/loanflow.json)
//! name only metrics, labels and label values that a node exports: checked against a real scrape
//! of `/metrics` after loans ran. (`promtool check rules` and `promtool test rules` run in .ci/run.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{approvable_application, spawn_app, Db};
use crate::ops::scrape_until;
use crate::promql::{self, MatchOp};

/// Series Prometheus makes itself for every target, not exported by the node.
const SYNTHETIC: [&str; 1] = ["up"];
/// Labels Prometheus attaches from the scrape target.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];
/// Label values a healthy run never exports: they appear when something fails.
const ONLY_ON_FAILURE: [(&str, &str); 1] = [("status", "503")];

/// Each metric's labels and the values seen for each: `name -> label -> values`.
type Exported = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn exported(scrape: &str) -> Exported {
    let mut metrics = Exported::new();
    for line in scrape.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let series = line.rsplit_once(' ').map_or(line, |(series, _value)| series);
        let Some((name, labels)) = series.split_once('{') else {
            metrics.entry(series.to_owned()).or_default();
            continue;
        };
        let entry = metrics.entry(name.to_owned()).or_default();
        let read = promql::names(&format!("m{{{labels}")).unwrap_or_else(|e| panic!("unreadable series `{line}`: {e}"));
        for matcher in read.selectors.into_iter().flat_map(|s| s.matchers) {
            entry.entry(matcher.label).or_default().insert(matcher.value);
        }
    }
    metrics
}

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The `expr:` values of a rules file: one-line scalars (quoted or not) or `|`/`>` blocks.
fn rule_expressions(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().trim_start_matches("- ").strip_prefix("expr:") else { continue };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let indent = line.len() - line.trim_start().len();
            let block =
                lines[i + 1..].iter().take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent);
            exprs.push(block.map(|l| l.trim()).collect::<Vec<_>>().join(" "));
        } else {
            exprs.push(rest.trim_matches(|c: char| c == '"' || c == '\'').to_owned());
        }
    }
    exprs
}

/// Every `expr` of the dashboard's panels (rows included) and the metric of its
/// `label_values(metric, label)` variables.
fn dashboard_expressions(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(expr)) = map.get("expr") {
                    out.push(expr.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(query) = variable["definition"].as_str().and_then(|q| q.strip_prefix("label_values(")) {
            let (metric, label) = query.trim_end_matches(')').split_once(',').expect("label_values(metric, label)");
            exprs.push(format!("{}{{{}=~\".*\"}}", metric.trim(), label.trim()));
        }
    }
    exprs
}

/// What `expr` names that `metrics` lacks.
fn unknown_names(expr: &str, metrics: &Exported) -> Vec<String> {
    let read = promql::names(expr).unwrap_or_else(|e| panic!("cannot read `{expr}`: {e}"));
    let mut problems = Vec::new();
    let mut labels_in_scope: BTreeSet<&str> = TARGET_LABELS.into();
    for selector in &read.selectors {
        let Some(labels) = metrics.get(&selector.metric) else {
            if !SYNTHETIC.contains(&selector.metric.as_str()) {
                problems.push(format!("metric {}", selector.metric));
            }
            continue;
        };
        labels_in_scope.extend(labels.keys().map(String::as_str));
        for matcher in &selector.matchers {
            let label = matcher.label.as_str();
            if TARGET_LABELS.contains(&label) {
                continue;
            }
            let Some(values) = labels.get(label) else {
                problems.push(format!("label {}{{{label}}}", selector.metric));
                continue;
            };
            let failure_only = ONLY_ON_FAILURE.contains(&(label, matcher.value.as_str()));
            if matcher.op == MatchOp::Equal && !values.contains(&matcher.value) && !failure_only {
                problems.push(format!("value {}{{{label}=\"{}\"}} (seen: {values:?})", selector.metric, matcher.value));
            }
        }
    }
    for label in &read.grouping {
        if !labels_in_scope.contains(label.as_str()) {
            problems.push(format!("grouping label {label}"));
        }
    }
    problems.into_iter().map(|p| format!("{p} in `{expr}`")).collect()
}

#[actix_web::test]
async fn alert_rules_and_the_dashboard_name_only_exported_metrics() {
    let app = spawn_app(Db::Sqlite).await;
    let mut cancelled = approvable_application();
    cancelled["property"]["address"] = json!("9 Quay Street #fail-appraisal");
    let mut rejected = approvable_application();
    rejected["amount"] = json!(390000);
    for body in [approvable_application(), cancelled, rejected] {
        let id = app.submit(&body).await;
        app.wait_finished(&id, Duration::from_secs(10)).await;
    }
    let ready = app.client.get(app.url("/health/ready")).send().await.expect("GET /health/ready");
    assert_eq!(ready.status().as_u16(), 200);
    let scrape = scrape_until(
        &app,
        &[
            ("loanflow_loans_decided_total{status=\"cancelled\"}", 1.0),
            ("loanflow_step_duration_seconds_count{step=\"notification\"}", 3.0),
            ("loanflow_http_requests_total{method=\"GET\",route=\"/health/ready\",status=\"200\"}", 1.0),
        ],
    )
    .await;
    let metrics = exported(&scrape);

    let rules = rule_expressions(&repo_file("deploy/prometheus/alerts.yml"));
    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/grafana/loanflow.json")).expect("the dashboard is JSON");
    let panels = dashboard_expressions(&dashboard);
    assert!(rules.len() >= 8 && panels.len() >= 20, "too few expressions read: {rules:?} {panels:?}");
    let problems: Vec<String> = rules.iter().chain(&panels).flat_map(|expr| unknown_names(expr, &metrics)).collect();
    assert!(problems.is_empty(), "names no node exports:\n{}\n--- scrape ---\n{scrape}", problems.join("\n"));
}

#[test]
fn every_alert_has_a_unit_test() {
    let tests = repo_file("deploy/prometheus/alerts_test.yml");
    let rules = repo_file("deploy/prometheus/alerts.yml");
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert:")).map(str::trim).collect();
    assert!(alerts.len() >= 8, "{alerts:?}");
    for alert in alerts {
        assert!(tests.contains(&format!("alertname: {alert}\n")), "{alert} has no test in alerts_test.yml");
    }
}

#[test]
fn rule_expressions_are_read_from_one_line_and_block_scalars() {
    let yaml = "rules:\n  - alert: A\n    expr: up == 0\n  - alert: B\n    expr: |\n      sum(x)\n        > 1\n    for: 1m\n  - expr: 'y'\n";
    assert_eq!(rule_expressions(yaml), ["up == 0", "sum(x) > 1", "y"]);
}
