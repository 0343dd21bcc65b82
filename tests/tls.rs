//! Transport security: the real binary talks to PostgreSQL (`sslmode=verify-full`) and RabbitMQ
//! (`amqps://`) over TLS, the server's certificate checked against a CA the test makes with the
//! openssl CLI; a missing or wrong CA is refused with a clear error. Each test starts a private
//! server on spare ports (PostgreSQL with initdb, as the `postgres` user; a RabbitMQ node with
//! only a TLS listener) and stops it at the end, also when the test fails.

#[path = "common/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "crash/process.rs"]
mod process;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::sql_types::Bool;
use diesel::{QueryableByName, RunQueryDsl};
use process::Service;
use serde_json::{json, Value};

/// How long a private server may take to come up.
const SERVER_DEADLINE: Duration = Duration::from_secs(90);

/// A port nobody listens on right now.
fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("binding port 0").local_addr().unwrap().port()
}

fn run(what: &str, command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, plus a second, unrelated CA.
struct Certificates {
    ca: PathBuf,
    wrong_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_certificates(dir: &Path) -> Certificates {
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(dir);
        run(&format!("openssl {}", args.join(" ")), &mut command);
    };
    for (key, cert, name) in [("ca.key", "ca.pem", "loanflow test CA"), ("wrong.key", "wrong.pem", "another CA")] {
        let subject = format!("/CN={name}");
        openssl(
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj"]
                .into_iter()
                .chain([subject.as_str()])
                .collect::<Vec<_>>(),
        );
    }
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(path("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    Certificates { ca: path("ca.pem"), wrong_ca: path("wrong.pem"), cert: path("server.pem"), key: path("server.key") }
}

/// A directory the `postgres` user owns (its server refuses a data directory or key it does
/// not own).
fn directory_for_postgres() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    run("chown", Command::new("chown").args(["postgres:postgres"]).arg(dir.path()));
    dir
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Missing tools are a failure in CI (which installs them) and a skip elsewhere.
fn unavailable(what: &str) -> bool {
    assert!(std::env::var_os("CI").is_none(), "{what} is not installed: CI must install it");
    eprintln!("skipped: {what} is not installed");
    true
}

/// A private PostgreSQL that takes only TLS connections; stopped on drop.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start(bin: PathBuf, certs: &Certificates) -> Self {
        let dir = directory_for_postgres();
        let (data, port) = (dir.path().join("data"), spare_port());
        let as_postgres = |program: &Path| {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        };
        run("initdb", as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust"]));
        for (from, to) in [(&certs.cert, "server.pem"), (&certs.key, "server.key")] {
            std::fs::copy(from, data.join(to)).unwrap();
        }
        run(
            "chown",
            Command::new("chown").args(["postgres:postgres"]).arg(data.join("server.pem")).arg(data.join("server.key")),
        );
        run("chmod", Command::new("chmod").arg("600").arg(data.join("server.key")));
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nssl = on\n\
             ssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n",
            dir = dir.path().display()
        );
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        // TLS only: a connection without it is refused, so a loan that finishes went over TLS.
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\nlocal all all trust\n",
        )
        .unwrap();
        let log = dir.path().join("postgres.log");
        run(
            "pg_ctl start",
            as_postgres(&bin.join("pg_ctl")).arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "start"]),
        );
        PrivatePostgres { bin, data, port, _dir: dir }
    }

    fn url(&self, tls: &str) -> String {
        format!("postgres://postgres@localhost:{}/postgres?{tls}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Run the binary expecting it to refuse to start; its output.
fn refused_start(env: &[(&str, String)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loanflow"));
    command.stdin(Stdio::null()).env("NO_COLOR", "1").env("LOANFLOW__HTTP__PORT", "0");
    command.env("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "0");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starting loanflow");
    let started = Instant::now();
    while child.try_wait().expect("polling loanflow").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("loanflow kept running although it should refuse the database");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "loanflow started");
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

async fn submit_and_finish(service: &Service) {
    let client = reqwest::Client::new();
    let application = json!({
        "applicant": {"name": "Grace Hopper", "email": "grace@example.com", "annual_income": 150000, "monthly_debts": 300},
        "property": {"address": "12 Harbour Road, Lisbon", "declared_value": 400000},
        "amount": 200000, "term_months": 300
    });
    let created = client.post(service.url("/api/v1/loans")).json(&application).send().await.expect("submitting");
    assert_eq!(created.status().as_u16(), 201, "{:?}", created.text().await);
    let created: Value = created.json().await.unwrap();
    let (id, token) = (created["id"].as_str().unwrap(), created["access_token"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let loan: Value = client
            .get(service.url(&format!("/api/v1/loans/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !loan["notified_at"].is_null() {
            return;
        }
        assert!(Instant::now() < deadline, "loan not finished over TLS: {loan}\n{}", service.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn postgres_over_tls_checks_the_servers_certificate_against_the_configured_ca() {
    let Some(bin) = postgres_bin() else {
        unavailable("PostgreSQL (initdb)");
        return;
    };
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(certs_dir.path());
    let server = PrivatePostgres::start(bin, &certs);
    let verified = server.url(&format!("sslmode=verify-full&sslrootcert={}", certs.ca.display()));

    #[derive(QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = Bool)]
        ssl: bool,
    }
    {
        let mut conn = loanflow::inspect::Backend::from_url(&verified).connect().expect("verify-full with the CA");
        let used: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .get_result(&mut conn)
            .unwrap();
        assert!(used.ssl, "the connection uses TLS");
    }

    let home = tempfile::tempdir().unwrap();
    let without_ca = refused_start(&[
        ("LOANFLOW__DATABASE__URL", server.url("sslmode=verify-full")),
        ("HOME", home.path().display().to_string()),
    ]);
    assert!(without_ca.contains("root certificate file"), "{without_ca}");
    let wrong = format!("sslmode=verify-full&sslrootcert={}", certs.wrong_ca.display());
    let wrong_ca = refused_start(&[("LOANFLOW__DATABASE__URL", server.url(&wrong))]);
    assert!(wrong_ca.contains("certificate verify failed"), "{wrong_ca}");
    let plain = refused_start(&[("LOANFLOW__DATABASE__URL", server.url("sslmode=disable"))]);
    assert!(plain.contains("no encryption"), "the server takes TLS only: {plain}");

    let service = Service::start(&[("LOANFLOW__DATABASE__URL", verified), ("LOANFLOW__HTTP__PORT", "0".into())]);
    submit_and_finish(&service).await;
}

/// A private RabbitMQ node whose only listener is TLS; stopped on drop.
struct PrivateRabbit {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

impl PrivateRabbit {
    fn start(certs: &Certificates) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, dist_port) = (spare_port(), spare_port());
        let path = |name: &str| dir.path().join(name).display().to_string();
        let conf = format!(
            "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\nssl_options.cacertfile = {ca}\n\
             ssl_options.certfile = {cert}\nssl_options.keyfile = {key}\nssl_options.verify = verify_none\n\
             ssl_options.fail_if_no_peer_cert = false\nloopback_users = none\n",
            ca = certs.ca.display(),
            cert = certs.cert.display(),
            key = certs.key.display(),
        );
        std::fs::write(path("rabbitmq.conf"), conf).unwrap();
        std::fs::write(path("env.conf"), "").unwrap();
        std::fs::write(path("enabled_plugins"), "[].\n").unwrap();
        let node = format!("loanflow-tls-{}@localhost", std::process::id());
        let log = std::fs::File::create(path("out.log")).unwrap();
        let child = Command::new(RABBITMQ_SERVER)
            .env("RABBITMQ_CONF_ENV_FILE", path("env.conf"))
            .env("RABBITMQ_NODENAME", node)
            .env("RABBITMQ_NODE_PORT", spare_port().to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("HOME", dir.path())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting a RabbitMQ node");
        let out_log = path("out.log");
        let rabbit = PrivateRabbit { child, port, dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(&out_log).unwrap_or_default();
            assert!(started.elapsed() < SERVER_DEADLINE, "the RabbitMQ node did not open its TLS port:\n{log}");
            std::thread::sleep(Duration::from_millis(200));
        }
        rabbit
    }

    fn url(&self) -> String {
        format!("amqps://guest:guest@localhost:{}/%2f", self.port)
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        // The Erlang VM writes its pid; the script that started it may be another process.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn rabbitmq_over_tls_checks_the_brokers_certificate_against_the_configured_ca() {
    if !Path::new(RABBITMQ_SERVER).is_file() {
        unavailable("RabbitMQ");
        return;
    }
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certificates(certs_dir.path());
    let rabbit = PrivateRabbit::start(&certs);
    let database = database::TestDatabase::create(database::Db::Postgres);
    let node = |ca_file: &Path| {
        Service::start(&[
            ("LOANFLOW__DATABASE__URL", database.url.clone()),
            ("LOANFLOW__BROKER__URL", rabbit.url()),
            ("LOANFLOW__BROKER__CA_FILE", ca_file.display().to_string()),
            ("LOANFLOW__BROKER__QUEUE_TYPE", "classic".into()),
            ("LOANFLOW__ADMIN__TOKEN", "tls-test-token".into()),
            ("LOANFLOW__HTTP__PORT", "0".into()),
        ])
    };

    // Readiness says only that the broker is down (details are for the log, not for anyone
    // who asks); the node's log names the certificate error.
    let refused = node(&certs.wrong_ca);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = reqwest::get(refused.url("/health/ready")).await.unwrap();
        assert_eq!(ready.status().as_u16(), 503, "ready with a broker whose certificate the CA did not sign");
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["checks"]["broker"]["status"], "down", "{body}");
        let log = refused.log_tail(200);
        if log.to_lowercase().contains("certificate") {
            break;
        }
        assert!(Instant::now() < deadline, "no certificate error in the log: {body}\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(refused);

    let service = node(&certs.ca);
    submit_and_finish(&service).await;
}
