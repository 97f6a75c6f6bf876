//! The `rulegen` command line: check, generate, diff and catalog. The only
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
    /// Time validation and rendering of a generated definition with N alerts.
    #[command(hide = true)]
    Bench {
        /// Number of alerts.
        #[arg(long, default_value_t = 1000)]
        alerts: usize,
    },
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
