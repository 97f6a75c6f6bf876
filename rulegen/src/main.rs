//! The `rulegen` command line: check, generate, diff, catalog and report. The only
//! place that prints and that uses anyhow.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use opsmon_rulegen::validate::receivers::Files;
use opsmon_rulegen::{known::Known, output, render};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "rulegen",
    version,
    about = "One threshold definition → Prometheus rules and tests, Grafana dashboards, Alertmanager routing, a PrometheusRule and runbooks"
)]
struct Cli {
    /// The threshold definition.
    #[arg(long, global = true, default_value = "deploy/thresholds.yaml")]
    thresholds: PathBuf,
    /// The exporter config: its business metrics, and the label values its collectors can write.
    #[arg(long = "exporter-config", global = true, default_value = "deploy/opsmon.yml")]
    exporter_config: PathBuf,
    /// Do not check that the receivers' `*_file` secrets exist (generating on
    /// a machine other than the Alertmanager host, which holds them).
    #[arg(
        long = "skip-secret-files",
        global = true,
        env = "RULEGEN_SKIP_SECRET_FILES",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    skip_secret_files: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the definition; print every problem; exit 1 if any.
    Check,
    /// Regenerate every output under DIR (atomically; nothing is written when invalid).
    Generate {
        /// Repository root the output paths are relative to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Exit 1 when the files under DIR differ from a fresh generation.
    Diff {
        /// Repository root the output paths are relative to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// List the metrics expressions may use: type, unit, labels and origin.
    Catalog,
    /// Answer the guide's daily checklists from a live Prometheus.
    ///
    /// Exit 0 when every item is ok (or has warnings / no data), 1 when any
    /// item is critical, 2 when Prometheus cannot be asked or --at is bad.
    Report(ReportArgs),
    /// Time validation and rendering of a generated definition with N alerts.
    #[command(hide = true)]
    Bench {
        /// Number of alerts.
        #[arg(long, default_value_t = 1000)]
        alerts: usize,
    },
}

/// `rulegen report` flags.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Prometheus' base URL (http only; a path prefix is allowed).
    #[arg(long, env = "OPSMON_PROMETHEUS_URL")]
    prometheus: String,
    /// Which checklist: morning, afternoon, evening or all.
    #[arg(long, default_value = "all", value_parser = ["morning", "afternoon", "evening", "all"])]
    checklist: String,
    /// Evaluate at this time: RFC 3339 or unix seconds (default: now).
    #[arg(long)]
    at: Option<String>,
    /// table (colour on a terminal), markdown, json or html.
    #[arg(long, default_value = "table", value_parser = ["table", "markdown", "json", "html"])]
    format: String,
    /// Write the report here (atomically) instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Deadline of each query, e.g. 5s or 500ms.
    #[arg(long, default_value = "5s")]
    timeout: String,
}

// Printing is this binary's job: reports go to stdout, problems to stderr.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rulegen: {error:#}");
            ExitCode::from(1)
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Check => {
            let model = load(cli)?;
            println!(
                "{}: {} alerts, {} recording rules, {} dashboards — ok",
                cli.thresholds.display(),
                model.alerts.len(),
                model.records.len(),
                model.boards.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate { out } => {
            let model = load(cli)?;
            let outputs = render::all(&model);
            let changed = output::write_all(out, &outputs).context("writing outputs")?;
            println!("generated {} files under {} ({changed} changed)", outputs.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { out } => {
            let model = load(cli)?;
            let outputs = render::all(&model);
            let differences = output::diff(out, &outputs);
            if differences.is_empty() {
                println!("{} generated files are up to date", outputs.len());
                return Ok(ExitCode::SUCCESS);
            }
            for d in &differences {
                eprintln!("{d}");
            }
            eprintln!("run `rulegen generate` and commit the result");
            Ok(ExitCode::from(1))
        }
        Command::Catalog => {
            let known = Known::load(&cli.exporter_config)?;
            println!("{:<58} {:<9} {:<7} {:<24} labels", "metric", "type", "unit", "source");
            for m in known.iter() {
                let source = match &m.source {
                    opsmon_rulegen::known::Source::Catalog(c) => format!("collector {c}"),
                    opsmon_rulegen::known::Source::Business(q) => format!("business query {q}"),
                    opsmon_rulegen::known::Source::Prometheus => "prometheus".to_owned(),
                    opsmon_rulegen::known::Source::Record => "recording rule".to_owned(),
                };
                let mut labels = m.labels.clone();
                if m.source != opsmon_rulegen::known::Source::Record {
                    labels.extend(["instance".to_owned(), "job".to_owned()]);
                }
                println!(
                    "{:<58} {:<9} {:<7} {:<24} {}",
                    m.name,
                    m.kind.as_str(),
                    opsmon_rulegen::known::unit_word(m.unit),
                    source,
                    labels.join(",")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => report(cli, args),
        Command::Bench { alerts } => {
            let known = Known::load(&cli.exporter_config)?;
            let text = std::fs::read_to_string(&cli.thresholds)
                .with_context(|| format!("reading {}", cli.thresholds.display()))?;
            let big = opsmon_rulegen::bench::scale(&text, *alerts);
            let start = Instant::now();
            let model = opsmon_rulegen::validate::validate_with("bench.yaml", &big, &known, &files(cli))?;
            let validated = start.elapsed();
            let outputs = render::all(&model);
            let total = start.elapsed();
            let bytes: usize = outputs.iter().map(|o| o.content.len()).sum();
            println!(
                "{} alerts: validate {:.0} ms, render {:.0} ms, total {:.0} ms; {} files, {} bytes",
                model.alerts.len(),
                validated.as_secs_f64() * 1000.0,
                (total - validated).as_secs_f64() * 1000.0,
                total.as_secs_f64() * 1000.0,
                outputs.len(),
                bytes
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn files(cli: &Cli) -> Files {
    Files { check_secret_files: !cli.skip_secret_files, ..Files::beside(&cli.thresholds) }
}

fn load(cli: &Cli) -> Result<opsmon_rulegen::model::Model> {
    Ok(opsmon_rulegen::load_with(&cli.thresholds, &cli.exporter_config, &files(cli))?)
}

/// Exit code when Prometheus cannot be asked or the flags are bad.
const CANNOT_ASK: u8 = 2;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn report(cli: &Cli, args: &ReportArgs) -> Result<ExitCode> {
    use opsmon_rulegen::model::Checklist;
    use opsmon_rulegen::report;
    use std::io::{IsTerminal, Write};
    let at = match &args.at {
        Some(text) => match report::time::parse(text) {
            Ok(at) => at,
            Err(e) => {
                eprintln!("rulegen report: {e}");
                return Ok(ExitCode::from(CANNOT_ASK));
            }
        },
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default(),
    };
    let timeout = match opsmon_rulegen::promql::parse_duration(&args.timeout) {
        Ok(d) if !d.is_zero() && d <= std::time::Duration::from_secs(300) => d,
        _ => {
            eprintln!(
                "rulegen report: --timeout {:?}: give a duration between 1ms and 5m, e.g. 5s",
                args.timeout
            );
            return Ok(ExitCode::from(CANNOT_ASK));
        }
    };
    let model = load(cli)?;
    if model.checklists.items.is_empty() {
        anyhow::bail!("{}: no `checklists:` section; nothing to report", cli.thresholds.display());
    }
    let lists = match Checklist::parse(&args.checklist) {
        Some(one) => vec![one],
        None => Checklist::ALL.to_vec(),
    };
    let options = report::Options {
        prometheus: args.prometheus.clone(),
        lists,
        at,
        sparklines: args.format == "html",
        timeout,
    };
    let shown = report::client::redact(args.prometheus.trim());
    let tty = std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if tty {
            eprint!("\rrulegen report: asking {shown}: {done}/{total} queries");
            if done == total {
                eprintln!();
            }
        } else if done == 0 {
            eprintln!("rulegen report: asking {shown}: {total} queries");
        }
    };
    let report = match report::run(&model.checklists, &options, &progress) {
        Ok(r) => r,
        Err(e) => {
            if tty {
                eprintln!();
            }
            eprintln!("rulegen report: {e}");
            return Ok(ExitCode::from(CANNOT_ASK));
        }
    };
    let color =
        args.output.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = match args.format.as_str() {
        "markdown" => report::markdown::render(&report),
        "json" => report::json::render(&report),
        "html" => report::html::render(&report),
        _ => report::table::render(&report, color),
    };
    match &args.output {
        Some(path) => write_atomically(path, &text)?,
        None => std::io::stdout().lock().write_all(text.as_bytes()).context("writing the report")?,
    }
    Ok(if report.worst() == report::Status::Critical { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Writes `text` beside `path` and renames it over, so a reader (or a mail
/// job) never sees half a report.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = path.with_file_name(format!(".{name}.rulegen-{}", std::process::id()));
    let written = std::fs::write(&staging, text).and_then(|()| std::fs::rename(&staging, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written.with_context(|| format!("writing {}", path.display()))
}
