//! opsmon-exporter's entry point: flags, logging, config, listeners, serve.
//! Usage errors (bad flag, bad config, address in use) exit with 2 and one
//! message naming the flag, file or address and the fix; never a backtrace.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use opsmon_exporter::cli::Cli;
use opsmon_exporter::logging;
use opsmon_exporter::reload::{self, Reloader};
use opsmon_exporter::server::{self, App};
use opsmon_exporter::settings::{Built, Config};

/// Exit code for anything the user can fix by changing flags or config.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    opsmon_exporter::allocator::restart_without_thread_caches();
    opsmon_exporter::allocator::limit_arenas();
    let cli = Cli::parse();
    if cli.print_man || cli.print_completions.is_some() {
        return print_generated(&cli);
    }
    logging::init(cli.log_level, cli.log_format);

    let (source, mut config) = match &cli.config_file {
        Some(path) => match Config::load(path) {
            Ok(config) => (path.clone(), config),
            Err(error) => return usage_error(&format!("invalid configuration:\n{error}")),
        },
        None => match Config::from_defaults() {
            Ok(config) => (PathBuf::from(Config::DEFAULTS_SOURCE), config),
            Err(error) => {
                return usage_error(&format!("invalid configuration from the environment:\n{error}"));
            }
        },
    };
    if let Err(problem) = cli.overrides().apply(&mut config) {
        return usage_error(&problem);
    }
    let web_config = match &cli.web_config_file {
        Some(path) => match opsmon_exporter::web_config::WebConfig::load(path) {
            Ok(web_config) => Some(Arc::new(web_config)),
            Err(error) => return usage_error(&format!("invalid web configuration:\n{error}")),
        },
        None => None,
    };

    // A scrape is small work: few workers and a small blocking pool keep
    // threads (and the allocator arenas that come with them), and so RSS, low.
    // `--config.check` builds the collectors as start-up does, on one thread.
    let threads = usize::from(cli.worker_threads);
    let runtime = if cli.config_check {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(8)
            .thread_keep_alive(Duration::from_secs(30))
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => return failure(&anyhow::Error::new(error).context("cannot start the async runtime")),
    };
    // Every value is checked and parsed here, once: the same call serves
    // start-up, `--config.check` and (later) a reload.
    let built = match runtime.block_on(async { config.build(&source) }) {
        Ok(built) => built,
        Err(error) => return usage_error(&format!("invalid configuration:\n{error}")),
    };
    if cli.config_check {
        return config_check(&cli, &config, &built);
    }
    let result = runtime.block_on(run(cli, built, web_config));
    // A blocking thread stuck in the kernel (a hung mount, a read that never
    // returns) must not keep the process alive after SIGTERM.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(error) => failure(&error),
    }
}

async fn run(
    cli: Cli,
    built: Built,
    web_config: Option<Arc<opsmon_exporter::web_config::WebConfig>>,
) -> anyhow::Result<ExitCode> {
    let mut listeners = Vec::new();
    for address in &cli.listen_addresses {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => listeners.push(listener),
            Err(error) => {
                return Ok(usage_error(&format!(
                    "cannot listen on {address} (--web.listen-address): {error}; stop whatever uses it or pick another address"
                )));
            }
        }
    }

    let source = cli.config_file.clone().unwrap_or_else(|| PathBuf::from(Config::DEFAULTS_SOURCE));
    if let Err(problems) = reload::prepare_business(&built, &source).await {
        return Ok(usage_error(&format!("invalid configuration:\n{problems}")));
    }
    let active = reload::into_active(built);
    let collector_names = active.engine.collector_names().join(",");
    let target_names = active.targets.keys().cloned().collect::<Vec<_>>().join(",");
    let app = Arc::new(
        App::new(active.engine, cli.telemetry_path.clone(), cli.max_requests)
            .with_web_options(&cli.web_options())
            .with_web_config(web_config)
            .with_own_addresses(listeners.iter().filter_map(|l| l.local_addr().ok()).collect())
            .with_targets(active.targets)
            .with_prober(active.prober)
            .with_reloader(Reloader::new(cli.config_file.clone()).with_overrides(cli.overrides())),
    );
    // Installed before "listening": from then on SIGHUP reloads instead of
    // killing the process (its default action).
    reload_on_sighup(Arc::clone(&app))?;
    for listener in &listeners {
        let address = listener.local_addr().context("reading a listener's address")?;
        tracing::info!(%address, path = %cli.telemetry_path, collectors = %collector_names, targets = %target_names, "listening");
    }
    server::serve(listeners, app, shutdown_signal(), Duration::from_secs(15)).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Reloads the configuration on every SIGHUP, as the Prometheus servers do.
fn reload_on_sighup(app: Arc<App>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!(signal = "SIGHUP", "received; reloading the configuration");
            // Failures are logged and counted by the reloader.
            let _ = app.reload().await;
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "received"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "received"),
    }
}

#[allow(clippy::print_stdout)] // --config.check reports on stdout by design.
fn config_check(cli: &Cli, config: &Config, built: &Built) -> ExitCode {
    let source =
        cli.config_file.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    println!("configuration OK: {source}");
    println!("collectors enabled: {}", built.collectors.names.join(", "));
    for (target, collector) in config.collectors.postgres.targets.iter().zip(&built.collectors.postgres) {
        let server = collector.server();
        println!(
            "postgres target {}: server {server}, statement_timeout {:?}, lock_timeout {:?}, {} table(s){}",
            target.name.value,
            target.statement_timeout.0,
            target.lock_timeout.0,
            target.tables.len(),
            if target.stat_statements.enabled { ", pg_stat_statements top-N" } else { "" }
        );
    }
    for (target, collector) in config.collectors.redis.targets.iter().zip(&built.collectors.redis) {
        // The address label: host and port or the socket path, never a password.
        println!(
            "redis target {}: {}, timeout {:?}{}",
            target.name.value,
            collector.address(),
            target.timeout.0,
            if collector.has_password() { ", with password" } else { "" }
        );
    }
    let host = &config.collectors.host;
    if host.enabled {
        println!(
            "host: {} process group(s), {} listening port(s), {} director(y/ies)",
            host.process_groups.len(),
            host.listen_ports.len(),
            host.directories.len()
        );
        if host.paths != opsmon_exporter::collectors::host::HostPaths::default() {
            println!(
                "host mounted at: procfs {}, sysfs {}, rootfs {}",
                host.paths.procfs.display(),
                host.paths.sysfs.display(),
                host.paths.rootfs.display()
            );
        }
    }
    println!(
        "scrape budget: header timeout minus {:?}, at most {:?}",
        config.scrape.timeout_offset.0, config.scrape.max_timeout.0
    );
    ExitCode::SUCCESS
}

/// `--print-man` / `--print-completions SHELL`: what packaging installs.
fn print_generated(cli: &Cli) -> ExitCode {
    use std::io::Write;
    let text = match cli.print_completions {
        Some(shell) => Cli::completions(shell),
        None => match Cli::man_page() {
            Ok(page) => page,
            Err(error) => return failure(&anyhow::Error::new(error).context("rendering the man page")),
        },
    };
    match std::io::stdout().write_all(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failure(&anyhow::Error::new(error).context("writing to stdout")),
    }
}

#[allow(clippy::print_stderr)] // the user must see this even with logging off.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("opsmon-exporter: {message}");
    ExitCode::from(USAGE_ERROR)
}

#[allow(clippy::print_stderr)]
fn failure(error: &anyhow::Error) -> ExitCode {
    eprintln!("opsmon-exporter: {error:#}");
    ExitCode::FAILURE
}
