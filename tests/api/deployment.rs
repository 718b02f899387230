//! Static checks of the deployment files: compose.yaml, the Dockerfile, .dockerignore and
//! .env.example. A careless edit fails here in a second, long before the container check in CI
//! builds the image and brings the stack up. Each message says what is wrong and what is expected.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use yaml_rust2::{Yaml, YamlLoader};

const BINARY: &str = "/app/focusflow";
/// The healthcheck as both files must spell it: exec form, since the image has no shell.
const HEALTHCHECK: [&str; 2] = [BINARY, "healthcheck"];
/// interval, timeout, start period, retries: the same in compose.yaml and the Dockerfile.
const HEALTH_TIMING: [(&str, &str, &str); 4] = [
    ("interval", "interval", "5s"),
    ("timeout", "timeout", "5s"),
    ("start_period", "start-period", "10s"),
    ("retries", "retries", "3"),
];
/// Variables that .env.example may name although the app does not read them.
const NOT_READ_BY_THE_APP: [&str; 1] = ["HOST_PORT"]; // compose's published port

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    fs::read_to_string(root().join(name))
        .unwrap_or_else(|error| panic!("cannot read {name} at the repository root: {error}"))
}

// ---- compose.yaml ------------------------------------------------------------------------------

fn compose() -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read("compose.yaml"))
        .unwrap_or_else(|error| panic!("compose.yaml is not valid YAML: {error}"));
    assert_eq!(
        docs.len(),
        1,
        "compose.yaml must hold exactly one YAML document, it holds {}",
        docs.len()
    );
    docs.remove(0)
}

fn keys(map: &Yaml) -> Vec<String> {
    map.as_hash()
        .map(|hash| hash.keys().filter_map(scalar).collect())
        .unwrap_or_default()
}

/// A scalar as compose reads it: `"3000"`, `3000` and `true` all become text.
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn service(compose: &Yaml) -> &Yaml {
    let service = &compose["services"]["focusflow"];
    assert!(
        service.as_hash().is_some(),
        "compose.yaml has no service `focusflow` under `services:` (Dokploy routes the domain to \
         that name); services found: {:?}",
        keys(&compose["services"])
    );
    service
}

fn sequence<'a>(value: &'a Yaml, what: &str) -> &'a [Yaml] {
    value.as_vec().map(Vec::as_slice).unwrap_or_else(|| {
        panic!("compose.yaml: `{what}` of service focusflow must be a list, found {value:?}")
    })
}

#[test]
fn compose_builds_the_focusflow_service_from_this_directory() {
    let compose = compose();
    let build = &service(&compose)["build"];
    let context = match build {
        Yaml::Hash(_) => scalar(&build["context"]),
        other => scalar(other),
    };
    assert!(
        matches!(context.as_deref(), Some("." | "./")),
        "compose.yaml: service focusflow must have `build: .` (the Dockerfile in this directory), \
         found {build:?}"
    );
    if let Some(dockerfile) = scalar(&build["dockerfile"]) {
        assert_eq!(
            dockerfile, "Dockerfile",
            "compose.yaml: build.dockerfile must be the repository's Dockerfile"
        );
    }
}

#[test]
fn compose_reads_the_env_file() {
    let compose = compose();
    let env_file = &service(&compose)["env_file"];
    match env_file {
        Yaml::String(path) => assert_eq!(
            path, ".env",
            "compose.yaml: `env_file` must be `.env`, found {path:?}"
        ),
        Yaml::Array(items) => {
            assert!(
                items.iter().all(|item| item.as_str().is_some()),
                "compose.yaml: `env_file` entries must be plain paths: the long form \
                 (`path:` + `required:`) needs docker compose >= 2.24 and docker-compose 1.x \
                 rejects it; found {items:?}"
            );
            assert!(
                items.iter().any(|item| item.as_str() == Some(".env")),
                "compose.yaml: `env_file` must name `.env`, found {items:?}"
            );
        }
        other => panic!("compose.yaml: service focusflow needs `env_file: .env`, found {other:?}"),
    }
}

#[test]
fn compose_exposes_and_publishes_container_port_3000() {
    let compose = compose();
    let service = service(&compose);
    let exposed: Vec<String> = sequence(&service["expose"], "expose")
        .iter()
        .filter_map(scalar)
        .collect();
    assert!(
        exposed
            .iter()
            .any(|port| port == "3000" || port == "3000/tcp"),
        "compose.yaml: `expose` must list \"3000\" (Traefik reaches the container there), found \
         {exposed:?}"
    );

    let ports = sequence(&service["ports"], "ports");
    let published = ports.iter().any(|port| match port {
        Yaml::Hash(_) => {
            scalar(&port["target"]).as_deref() == Some("3000")
                && scalar(&port["published"]).as_deref() == Some("${HOST_PORT:-3000}")
        }
        other => scalar(other).as_deref() == Some("${HOST_PORT:-3000}:3000"),
    });
    assert!(
        published,
        "compose.yaml: `ports` must publish \"${{HOST_PORT:-3000}}:3000\" (HOST_PORT=0 on \
         Dokploy), found {ports:?}"
    );
}

/// `(source, target, read_only)` of a short (`a:b:ro`) or long (`source:`/`target:`) volume entry.
fn mount(entry: &Yaml) -> Option<(String, String, bool)> {
    if let Some(text) = entry.as_str() {
        let parts: Vec<&str> = text.split(':').collect();
        return match parts.as_slice() {
            [source, target] => Some((source.to_string(), target.to_string(), false)),
            [source, target, mode] => Some((
                source.to_string(),
                target.to_string(),
                mode.split(',').any(|m| m == "ro"),
            )),
            _ => None,
        };
    }
    Some((
        scalar(&entry["source"])?,
        scalar(&entry["target"])?,
        entry["read_only"].as_bool().unwrap_or(false),
    ))
}

#[test]
fn compose_mounts_the_data_volume_and_the_prompts() {
    let compose = compose();
    let volumes = sequence(&service(&compose)["volumes"], "volumes");
    let mounts: Vec<(String, String, bool)> = volumes.iter().filter_map(mount).collect();
    assert!(
        mounts
            .iter()
            .any(|(source, target, _)| source == "focusflow-data" && target == "/app/data"),
        "compose.yaml: volumes must mount `focusflow-data:/app/data` (all state lives there), \
         found {mounts:?}"
    );
    assert!(
        mounts.iter().any(|(source, target, read_only)| {
            matches!(source.as_str(), "./prompts" | "./prompts/")
                && target.trim_end_matches('/') == "/app/prompts"
                && *read_only
        }),
        "compose.yaml: volumes must mount `./prompts:/app/prompts:ro` (read-only), found \
         {mounts:?}"
    );
    assert!(
        !compose["volumes"]["focusflow-data"].is_badvalue(),
        "compose.yaml: the named volume `focusflow-data` must be declared under the top-level \
         `volumes:`, found {:?}",
        keys(&compose["volumes"])
    );
}

#[test]
fn compose_restarts_unless_stopped() {
    let compose = compose();
    let restart = scalar(&service(&compose)["restart"]);
    assert_eq!(
        restart.as_deref(),
        Some("unless-stopped"),
        "compose.yaml: service focusflow needs `restart: unless-stopped`"
    );
}

#[test]
fn compose_healthcheck_runs_the_binary() {
    let compose = compose();
    let health = &service(&compose)["healthcheck"];
    assert!(
        health.as_hash().is_some(),
        "compose.yaml: service focusflow has no `healthcheck:`"
    );
    assert_ne!(
        health["disable"].as_bool(),
        Some(true),
        "compose.yaml: the healthcheck is disabled"
    );
    let test: Vec<String> = health["test"]
        .as_vec()
        .unwrap_or_else(|| {
            panic!(
                "compose.yaml: healthcheck.test must be the exec form [\"CMD\", \"{BINARY}\", \
                 \"healthcheck\"] (the image has no shell for a string or CMD-SHELL), found {:?}",
                health["test"]
            )
        })
        .iter()
        .filter_map(scalar)
        .collect();
    assert_eq!(
        test,
        ["CMD", HEALTHCHECK[0], HEALTHCHECK[1]],
        "compose.yaml: healthcheck.test must be [\"CMD\", \"{BINARY}\", \"healthcheck\"] (no \
         shell, curl or node in the image)"
    );
    for (key, _, expected) in HEALTH_TIMING {
        assert_eq!(
            scalar(&health[key]).as_deref(),
            Some(expected),
            "compose.yaml: healthcheck.{key} must be {expected}"
        );
    }
}

/// compose.cluster.yaml: the replicas share PostgreSQL and the bucket, publish no port of their
/// own (Traefik does), keep the image's healthcheck, and every service has a healthcheck or is
/// a one-shot the replicas wait for.
#[test]
fn the_cluster_compose_file_shares_one_database_and_one_bucket_behind_traefik() {
    let mut docs = YamlLoader::load_from_str(&read("compose.cluster.yaml"))
        .unwrap_or_else(|error| panic!("compose.cluster.yaml is not valid YAML: {error}"));
    assert_eq!(docs.len(), 1, "compose.cluster.yaml: one YAML document");
    let compose = docs.remove(0);
    let services = &compose["services"];
    for name in ["postgres", "minio", "minio-bucket", "focusflow", "traefik"] {
        assert!(
            services[name].as_hash().is_some(),
            "compose.cluster.yaml: no service {name}; found {:?}",
            keys(services)
        );
    }
    let focusflow = &services["focusflow"];
    for variable in [
        "DATABASE_URL",
        "STORAGE_URL",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "ALLOWED_HOSTS",
    ] {
        assert!(
            scalar(&focusflow["environment"][variable]).is_some(),
            "compose.cluster.yaml: focusflow does not set {variable}"
        );
    }
    let database = scalar(&focusflow["environment"]["DATABASE_URL"]).unwrap_or_default();
    assert!(
        database.starts_with("postgres://") && database.contains("@postgres:5432/"),
        "compose.cluster.yaml: DATABASE_URL must name the postgres service: {database}"
    );
    let storage = scalar(&focusflow["environment"]["STORAGE_URL"]).unwrap_or_default();
    assert!(storage.starts_with("s3://"), "STORAGE_URL: {storage}");
    assert!(
        focusflow["ports"].is_badvalue(),
        "compose.cluster.yaml: replicas must not publish a host port (they would collide; Traefik \
         publishes one)"
    );
    assert!(
        focusflow["container_name"].is_badvalue(),
        "compose.cluster.yaml: a container_name forbids more than one replica"
    );
    let test: Vec<String> = focusflow["healthcheck"]["test"]
        .as_vec()
        .map(|test| test.iter().filter_map(scalar).collect())
        .unwrap_or_default();
    assert_eq!(test, ["CMD", HEALTHCHECK[0], HEALTHCHECK[1]]);
    for name in ["postgres", "minio", "traefik"] {
        assert!(
            services[name]["healthcheck"]["test"].as_vec().is_some(),
            "compose.cluster.yaml: service {name} has no healthcheck"
        );
    }
    assert_eq!(
        scalar(&focusflow["depends_on"]["postgres"]["condition"]).as_deref(),
        Some("service_healthy")
    );
    assert_eq!(
        scalar(&focusflow["depends_on"]["minio-bucket"]["condition"]).as_deref(),
        Some("service_completed_successfully")
    );
    assert_eq!(
        scalar(
            &focusflow["labels"]["traefik.http.services.focusflow.loadbalancer.healthcheck.path"]
        )
        .as_deref(),
        Some("/api/health")
    );
}

#[test]
fn compose_keeps_the_image_settings() {
    let compose = compose();
    let service = service(&compose);
    if let Some(user) = scalar(&service["user"]) {
        let name = user.split(':').next().unwrap_or_default();
        assert!(
            !matches!(name, "" | "0" | "root"),
            "compose.yaml: `user: {user}` runs the app as root; leave the image's user"
        );
    }
    // `environment:` as a map or as a list of NAME=value
    let mut environment: Vec<(String, String)> = Vec::new();
    match &service["environment"] {
        Yaml::Hash(hash) => {
            for (name, value) in hash {
                if let (Some(name), Some(value)) = (scalar(name), scalar(value)) {
                    environment.push((name, value));
                }
            }
        }
        Yaml::Array(items) => {
            for item in items.iter().filter_map(Yaml::as_str) {
                if let Some((name, value)) = item.split_once('=') {
                    environment.push((name.to_string(), value.to_string()));
                }
            }
        }
        _ => {}
    }
    for (name, value) in environment {
        match name.as_str() {
            "PORT" => assert_eq!(
                value, "3000",
                "compose.yaml: environment PORT must stay 3000 (ports, expose and the healthcheck \
                 expect it)"
            ),
            "DATA_DIR" => assert_eq!(
                value, "/app/data",
                "compose.yaml: environment DATA_DIR must stay /app/data (the volume is mounted \
                 there)"
            ),
            _ => {}
        }
    }
}

// ---- Dockerfile --------------------------------------------------------------------------------

#[derive(Debug)]
struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

/// Instructions with continuation lines joined and comments dropped, grouped by stage.
fn dockerfile() -> Vec<Stage> {
    let text = read("Dockerfile");
    assert!(
        !text
            .lines()
            .take_while(|line| line.starts_with('#'))
            .any(|line| line.replace(' ', "").to_lowercase().starts_with("#escape=")),
        "Dockerfile: an `# escape=` directive is not supported by these checks"
    );
    let mut instructions = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue; // comments go, even inside a continuation
        }
        let (body, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (raw, false),
        };
        let (line, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        joined.push_str(body.trim());
        joined.push(' ');
        if continues {
            current = Some((line, joined));
        } else {
            let joined = joined.trim();
            let (keyword, args) = joined
                .split_once(char::is_whitespace)
                .unwrap_or((joined, ""));
            instructions.push(Instruction {
                line,
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_string(),
            });
        }
    }
    assert!(
        current.is_none(),
        "Dockerfile: the last instruction ends with a line continuation"
    );

    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|word| !word.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, r#as, name] if r#as.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                image: words.first().copied().unwrap_or_default().to_string(),
                name,
                instructions: Vec::new(),
            });
        } else {
            let Some(stage) = stages.last_mut() else {
                assert!(
                    instruction.keyword == "ARG",
                    "Dockerfile line {}: {} before the first FROM",
                    instruction.line,
                    instruction.keyword
                );
                continue;
            };
            stage.instructions.push(instruction);
        }
    }
    assert!(!stages.is_empty(), "Dockerfile: no FROM instruction");
    stages
}

/// The final stage's instructions, preceded by those of the stages it is built FROM (a runtime
/// stage inherits USER, ENV, EXPOSE, WORKDIR, HEALTHCHECK and CMD from its base).
fn runtime(stages: &[Stage]) -> Vec<&Instruction> {
    runtime_chain(stages)
        .iter()
        .rev()
        .flat_map(|&index| stages[index].instructions.iter())
        .collect()
}

/// The final stage's index, then those of the stages it is built FROM, base last.
fn runtime_chain(stages: &[Stage]) -> Vec<usize> {
    let mut current = stages.len() - 1;
    let mut chain = vec![current];
    while let Some(base) = stages[..current]
        .iter()
        .rposition(|stage| stage.name.as_deref() == Some(stages[current].image.as_str()))
    {
        chain.push(base);
        current = base;
    }
    chain
}

fn last<'a>(instructions: &[&'a Instruction], keyword: &str) -> Option<&'a Instruction> {
    instructions
        .iter()
        .rev()
        .find(|instruction| instruction.keyword == keyword)
        .copied()
}

/// An exec-form (JSON array) argument list, or None for the shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args.trim()).ok()
}

/// The files a COPY takes (flags dropped; the last word is the destination).
fn copy_sources(instruction: &Instruction) -> (Vec<String>, String, bool) {
    let words: Vec<&str> = instruction.args.split_whitespace().collect();
    let from_stage = words.iter().any(|word| word.starts_with("--from="));
    let paths: Vec<&str> = words
        .into_iter()
        .filter(|word| !word.starts_with("--"))
        .collect();
    let (destination, sources) = paths.split_last().unwrap_or((&"", &[]));
    (
        sources.iter().map(|s| s.to_string()).collect(),
        destination.to_string(),
        from_stage,
    )
}

/// `(major, minor)` of `1.95`, `1.95.0` or an image tag such as `1.95-bookworm`.
fn rust_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split(['-', '@']).next()?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn dockerfile_builds_with_a_pinned_rust_image_in_a_separate_stage() {
    let stages = dockerfile();
    assert!(
        stages.len() >= 2,
        "Dockerfile must be multi-stage (a Rust builder, then a small runtime); it has {} stage(s)",
        stages.len()
    );
    let builder = &stages[0];
    let image = builder
        .image
        .trim_start_matches("docker.io/")
        .trim_start_matches("library/");
    let tag = image.strip_prefix("rust:").unwrap_or_else(|| {
        panic!(
            "Dockerfile: the first stage must build FROM the official rust image, found {:?}",
            builder.image
        )
    });
    let pinned = Regex::new(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$").unwrap();
    assert!(
        pinned.is_match(tag),
        "Dockerfile: the builder image must be pinned to a Rust version such as \
         rust:1.95-bookworm, found rust:{tag}"
    );
    let manifest = read("Cargo.toml");
    let required = Regex::new(r#"(?m)^rust-version\s*=\s*"([0-9.]+)""#)
        .unwrap()
        .captures(&manifest)
        .map(|captures| captures[1].to_string());
    if let (Some(required), Some(pinned)) = (required, rust_version(tag)) {
        let needed = rust_version(&required).expect("rust-version in Cargo.toml");
        assert!(
            pinned >= needed,
            "Dockerfile: rust:{tag} is older than Cargo.toml's rust-version {required}"
        );
    }
    let runtime_base = runtime_chain(&stages)
        .last()
        .map(|&index| stages[index].image.clone())
        .unwrap_or_default();
    assert!(
        !runtime_chain(&stages).contains(&0)
            && !runtime_base
                .trim_start_matches("docker.io/")
                .trim_start_matches("library/")
                .starts_with("rust:"),
        "Dockerfile: the runtime (last) stage must start from a small base (scratch, a slim or \
         distroless image), not from the Rust builder; it starts from {runtime_base:?}"
    );
    assert!(
        stages
            .last()
            .unwrap()
            .instructions
            .iter()
            .all(|instruction| !instruction.args.contains("cargo ")),
        "Dockerfile: the runtime (last) stage must not run cargo: build in the builder stage"
    );
}

#[test]
fn dockerfile_caches_dependencies_in_a_layer_before_the_sources() {
    let stages = dockerfile();
    let builder = &stages[0].instructions;
    let copies_sources = |instruction: &Instruction| {
        instruction.keyword == "COPY" && {
            let (sources, _, from_stage) = copy_sources(instruction);
            !from_stage
                && sources.iter().any(|source| {
                    matches!(
                        source.trim_start_matches("./").trim_end_matches('/'),
                        "" | "." | "src"
                    )
                })
        }
    };
    let sources_at = builder
        .iter()
        .position(copies_sources)
        .expect("Dockerfile: the builder stage never copies src/ (or `.`)");
    let manifest_at = builder[..sources_at]
        .iter()
        .position(|instruction| {
            let (sources, _, _) = copy_sources(instruction);
            instruction.keyword == "COPY"
                && ["Cargo.toml", "Cargo.lock"].iter().all(|file| {
                    sources
                        .iter()
                        .any(|source| source.trim_start_matches("./") == *file)
                })
        })
        .unwrap_or_else(|| {
            panic!(
                "Dockerfile: the builder must COPY Cargo.toml and Cargo.lock before it copies the \
                 sources (line {}), so the dependency layer is cached",
                builder[sources_at].line
            )
        });
    let dependency_build = builder[manifest_at..sources_at].iter().find(|instruction| {
        instruction.keyword == "RUN" && instruction.args.contains("cargo build")
    });
    assert!(
        dependency_build.is_some(),
        "Dockerfile: no `RUN ... cargo build` between copying the manifest (line {}) and the \
         sources (line {}): the dependencies would be rebuilt on every source change",
        builder[manifest_at].line,
        builder[sources_at].line
    );
    let release = builder[sources_at..].iter().find(|instruction| {
        instruction.keyword == "RUN" && instruction.args.contains("cargo build")
    });
    let release = release.unwrap_or_else(|| {
        panic!(
            "Dockerfile: no `cargo build` after the sources are copied (line {})",
            builder[sources_at].line
        )
    });
    for flag in ["--release", "--locked"] {
        assert!(
            release.args.contains(flag),
            "Dockerfile line {}: the application build must use `cargo build {flag}`",
            release.line
        );
    }
}

#[test]
fn dockerfile_runtime_runs_as_a_non_root_user() {
    let stages = dockerfile();
    let runtime = runtime(&stages);
    let user = last(&runtime, "USER")
        .expect("Dockerfile: the runtime stage has no USER, so the app would run as root");
    let name = user.args.split(':').next().unwrap_or_default().trim();
    assert!(
        !matches!(name, "" | "0" | "root"),
        "Dockerfile line {}: `USER {}` is root; the app must run as the unprivileged focusflow user",
        user.line,
        user.args
    );
    assert!(
        matches!(
            user.args.as_str(),
            "focusflow" | "focusflow:focusflow" | "10001" | "10001:10001"
        ),
        "Dockerfile line {}: `USER {}`: the deployment (volume ownership, docs, the container \
         check) expects focusflow, uid/gid 10001",
        user.line,
        user.args
    );
}

/// `ENV A=1 B="two words"` or the legacy `ENV A value`.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    let first = args.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (name, value) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return vec![(name.to_string(), value.trim().to_string())];
    }
    let mut pairs = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut words = Vec::new();
    for c in args.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    for word in words {
        if let Some((name, value)) = word.split_once('=') {
            pairs.push((name.to_string(), value.to_string()));
        }
    }
    pairs
}

#[test]
fn dockerfile_runtime_listens_on_0_0_0_0_port_3000_with_data_in_app_data() {
    let stages = dockerfile();
    let runtime = runtime(&stages);
    let mut env = std::collections::BTreeMap::new();
    for instruction in runtime
        .iter()
        .filter(|instruction| instruction.keyword == "ENV")
    {
        env.extend(env_pairs(&instruction.args));
    }
    for (name, expected) in [("HOST", "0.0.0.0"), ("DATA_DIR", "/app/data")] {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(expected),
            "Dockerfile: the runtime stage must set `ENV {name}={expected}`"
        );
    }
    if let Some(port) = env.get("PORT") {
        assert_eq!(
            port, "3000",
            "Dockerfile: ENV PORT must be 3000 (compose and the healthcheck expect it)"
        );
    }
    let exposed: Vec<&str> = runtime
        .iter()
        .filter(|instruction| instruction.keyword == "EXPOSE")
        .flat_map(|instruction| instruction.args.split_whitespace())
        .collect();
    assert!(
        exposed
            .iter()
            .any(|port| matches!(*port, "3000" | "3000/tcp")),
        "Dockerfile: the runtime stage must `EXPOSE 3000`, found {exposed:?}"
    );
    let workdir =
        last(&runtime, "WORKDIR").map(|instruction| instruction.args.trim_end_matches('/'));
    assert_eq!(
        workdir,
        Some("/app"),
        "Dockerfile: the runtime WORKDIR must be /app (PROMPT_PATH defaults to \
         prompts/meeting_summary.md, relative to it)"
    );
    assert!(
        runtime
            .iter()
            .any(|instruction| instruction.keyword == "COPY"
                && copy_sources(instruction).1.trim_end_matches('/') == "/app/prompts"),
        "Dockerfile: the runtime stage must COPY the prompts to /app/prompts"
    );
}

#[test]
fn dockerfile_healthcheck_and_cmd_run_the_binary_in_exec_form() {
    let stages = dockerfile();
    let runtime = runtime(&stages);
    let health =
        last(&runtime, "HEALTHCHECK").expect("Dockerfile: the runtime stage has no HEALTHCHECK");
    let (options, command) = health.args.split_once("CMD").unwrap_or_else(|| {
        panic!(
            "Dockerfile line {}: HEALTHCHECK must run `CMD [\"{BINARY}\", \"healthcheck\"]`, \
             found `HEALTHCHECK {}`",
            health.line, health.args
        )
    });
    assert_eq!(
        exec_form(command),
        Some(HEALTHCHECK.map(String::from).to_vec()),
        "Dockerfile line {}: HEALTHCHECK must be `CMD [\"{BINARY}\", \"healthcheck\"]` in exec \
         form (no shell, curl or node in the image), found `CMD {}`",
        health.line,
        command.trim()
    );
    for (_, option, expected) in HEALTH_TIMING {
        assert!(
            options
                .split_whitespace()
                .any(|word| word == format!("--{option}={expected}")),
            "Dockerfile line {}: HEALTHCHECK needs --{option}={expected}, like compose.yaml",
            health.line
        );
    }

    let cmd = last(&runtime, "CMD").expect("Dockerfile: the runtime stage has no CMD");
    let argv = exec_form(&cmd.args).unwrap_or_else(|| {
        panic!(
            "Dockerfile line {}: CMD must be in exec form, [\"{BINARY}\"], so the app is PID 1 \
             and gets SIGTERM (and the image has no shell); found `CMD {}`",
            cmd.line, cmd.args
        )
    });
    if let Some(entrypoint) = last(&runtime, "ENTRYPOINT") {
        assert!(
            exec_form(&entrypoint.args).is_some(),
            "Dockerfile line {}: ENTRYPOINT must be in exec form",
            entrypoint.line
        );
    } else {
        assert_eq!(
            argv.first().map(String::as_str),
            Some(BINARY),
            "Dockerfile line {}: CMD must start the binary {BINARY}",
            cmd.line
        );
    }
}

// ---- .dockerignore -----------------------------------------------------------------------------

/// Removes `.` and `..` from a path relative to the repository root.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The top folder of every `[[bench]]`, `[[test]]` and `[[example]]` the manifest declares: its
/// `path`, or benches/, tests/, examples/.
fn declared_target_dirs(manifest: &str) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    let mut section: Option<&str> = None;
    let mut path: Option<String> = None;
    let mut flush = |section: Option<&str>, path: Option<String>| {
        if let Some(default) = section {
            let path = path.unwrap_or_else(|| default.to_string());
            if let Some(Component::Normal(top)) = Path::new(&path).components().next() {
                dirs.insert(top.to_string_lossy().into_owned());
            }
        }
    };
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(section.take(), path.take());
            section = match line {
                "[[bench]]" => Some("benches"),
                "[[test]]" => Some("tests"),
                "[[example]]" => Some("examples"),
                _ => None,
            };
        } else if let Some(value) = line.strip_prefix("path")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            path = Some(value.trim().trim_matches('"').to_string());
        }
    }
    flush(section, path);
    dirs
}

#[test]
fn dockerignore_lets_in_everything_the_build_reads() {
    let root = root();
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src"].map(String::from).into();
    // files the compiler reads: include_str!/include_bytes! paths and askama templates
    let include = Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)"#).unwrap();
    let mut sources = Vec::new();
    rust_files(&root.join("src"), &mut sources);
    for file in &sources {
        let text = fs::read_to_string(file).unwrap();
        for captures in include.captures_iter(&text) {
            let target = normalize(&file.parent().unwrap().join(&captures[1]));
            if let Ok(relative) = target.strip_prefix(normalize(root))
                && let Some(Component::Normal(top)) = relative.components().next()
            {
                needed.insert(top.to_string_lossy().into_owned());
            }
        }
        if text.contains("#[template(path") {
            needed.insert("templates".into());
        }
    }
    // targets the manifest declares (cargo refuses a manifest whose target file is missing)
    needed.extend(declared_target_dirs(&read("Cargo.toml")));
    for optional in ["build.rs", "askama.toml"] {
        if root.join(optional).exists() {
            needed.insert(optional.into());
        }
    }
    // what the Dockerfile copies from the context
    for stage in dockerfile() {
        for instruction in stage.instructions.iter().filter(|i| i.keyword == "COPY") {
            let (sources, _, from_stage) = copy_sources(instruction);
            if from_stage {
                continue;
            }
            // a file inside a folder (`scripts/link-hot-first`) is let in by its own line or
            // by its folder's
            for source in sources {
                let source = source.trim_start_matches("./").trim_end_matches('/');
                if source != "." && !source.is_empty() {
                    needed.insert(source.to_string());
                }
            }
        }
    }

    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect();
    assert_eq!(
        patterns.first().map(String::as_str),
        Some("*"),
        ".dockerignore must be a whitelist: `*` first, then a `!path` line for each thing the \
         build reads"
    );
    for name in needed {
        // the last pattern naming it or a folder holding it decides, as in Docker
        let named = |path: &str| {
            name == path
                || name
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        let included = patterns
            .iter()
            .rev()
            .find_map(|pattern| {
                let (negated, path) = match pattern.strip_prefix('!') {
                    Some(path) => (true, path),
                    None => (false, pattern.as_str()),
                };
                let path = path.trim_start_matches('/').trim_end_matches('/');
                named(path).then_some(negated)
            })
            .unwrap_or(false);
        assert!(
            included,
            ".dockerignore leaves `{name}` out of the build context, but the image build reads it \
             (add `!{name}`)"
        );
    }
}

// ---- .env.example ------------------------------------------------------------------------------

/// Every environment variable the app reads: `vars.string/parse/boolean("NAME", ...)` in
/// src/config/, and `env::var("NAME")` anywhere in src/.
fn variables_read_by_the_app() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let typed = Regex::new(r#"\.(?:string|parse|boolean)\(\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    let mut config_files = Vec::new();
    rust_files(&root().join("src/config"), &mut config_files);
    for file in config_files {
        let config = fs::read_to_string(&file).unwrap();
        names.extend(typed.captures_iter(&config).map(|c| c[1].to_string()));
    }
    let raw = Regex::new(r#"env::var(?:_os)?\(\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    let mut sources = Vec::new();
    rust_files(&root().join("src"), &mut sources);
    for file in sources {
        let text = fs::read_to_string(&file).unwrap();
        names.extend(raw.captures_iter(&text).map(|c| c[1].to_string()));
    }
    names
}

fn variables_in_env_example() -> BTreeSet<String> {
    let line = Regex::new(r"(?m)^[ \t]*#?[ \t]*([A-Z][A-Z0-9_]*)=").unwrap();
    line.captures_iter(&read(".env.example"))
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn env_example_names_every_variable_the_app_reads() {
    let read_by_app = variables_read_by_the_app();
    // guard against a scan that silently finds nothing after a refactor of config.rs
    for name in [
        "PORT",
        "HOST",
        "DATA_DIR",
        "OPENAI_API_KEY",
        "ALLOW_PRIVATE_URLS",
    ] {
        assert!(
            read_by_app.contains(name),
            "the scan of src/config/ no longer finds {name} (found {read_by_app:?}): update \
             variables_read_by_the_app() in tests/api/deployment.rs"
        );
    }
    let documented = variables_in_env_example();
    let missing: Vec<&String> = read_by_app.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        ".env.example does not name {missing:?}, which the app reads: add each with its default \
         and one line of explanation"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|name| {
            !read_by_app.contains(*name) && !NOT_READ_BY_THE_APP.contains(&name.as_str())
        })
        .collect();
    assert!(
        unknown.is_empty(),
        ".env.example names {unknown:?}, which the app does not read (a typo, or a variable \
         that was removed)"
    );
}

// ---- Cargo.lock --------------------------------------------------------------------------------

#[test]
fn tls_needs_no_system_certificates_or_openssl() {
    // The runtime image has no CA bundle and no OpenSSL: HTTPS must use rustls with bundled roots.
    let lock = read("Cargo.lock");
    let package = |name: &str| lock.contains(&format!("\nname = \"{name}\"\n"));
    assert!(
        package("webpki-roots"),
        "Cargo.lock has no webpki-roots: the image has no CA certificates, so HTTPS to the \
         providers needs rustls with bundled roots (reqwest feature rustls-tls)"
    );
    for name in ["openssl-sys", "native-tls"] {
        assert!(
            !package(name),
            "Cargo.lock contains {name}: the runtime image has no OpenSSL or CA bundle"
        );
    }
}
