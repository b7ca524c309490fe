//! `mite-perf scenarios`: the scenario library an agent would offer.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use mite_perf::mite_env::{self, MiteEnv};

#[derive(Args, Debug)]
pub(crate) struct ScenariosArgs {
    /// A folder of scenario modules (may be given several times).
    #[arg(long = "scenario-dir", required = true)]
    pub(crate) scenario_dirs: Vec<PathBuf>,
    /// The Python venv with mite in it (the pinned build).
    #[arg(long, env = mite_env::VENV_ENV)]
    pub(crate) mite_venv: Option<PathBuf>,
}

/// `mite-perf scenarios`: what the launch form would list for these folders.
pub(crate) async fn list_scenarios(args: ScenariosArgs) -> anyhow::Result<ExitCode> {
    let venv = args.mite_venv.unwrap_or_else(mite_env::default_venv);
    let mite = MiteEnv::locate(&venv)?;
    let library = mite_perf::library::ScenarioLibrary::new(args.scenario_dirs);
    // Listing imports the folders' modules: sandboxed where this host can.
    let isolation = mite_perf::sandbox::Isolation::detect(false);
    let found = library
        .discover("this host", &mite.python(), isolation.sandbox())
        .await;
    for s in &found.scenarios {
        println!("{}", s.spec);
        for doc in [&s.function_doc, &s.doc] {
            for line in doc.lines().filter(|l| !l.trim().is_empty()) {
                println!("    {}", line.trim());
            }
        }
        if let Some(problem) = &s.problem {
            println!("    ! {problem}");
        }
        for shape in &s.shapes {
            let most = shape.required.iter().max().copied().unwrap_or(0);
            println!(
                "    at concurrency {}: up to {most} journeys over {} s{}",
                shape.concurrency,
                shape.required.len(),
                if shape.stops { "" } else { " and on" }
            );
        }
        if s.follows_concurrency() == Some(false) {
            println!("    (sets its own concurrency: the lab's concurrencies only repeat it)");
        }
    }
    for skipped in &found.skipped {
        eprintln!("passed over: {skipped}");
    }
    if found.scenarios.is_empty() {
        eprintln!("no scenario found");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
