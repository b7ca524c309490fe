//! The lab's side of the scenario library: an agent lists what its folders
//! hold (when idle: listing imports Python modules and must not share the
//! machine with a measurement), and a launch naming a library scenario goes
//! to an agent that lists it.

use std::time::Duration;

use domain::library::LibraryScenario;
use domain::model::FieldError;

use super::Lab;
use crate::model::{RunParams, ScenarioSpec};
use app::api::LabError;

/// An idle agent lists its library again this often (new modules show up
/// without a restart).
pub const LIBRARY_RESCAN: Duration = Duration::from_secs(60);

impl Lab {
    /// Lists the scenarios in this agent's `--scenario-dir` folders and
    /// stores them for the launch form. Nothing to do without folders.
    pub async fn refresh_library(&self) {
        let library = self.setup.policy.library();
        if library.is_empty() {
            return;
        }
        let agent = &self.setup.host.name;
        let python = self.setup.builds.pinned.python();
        let found = library
            .discover(agent, &python, self.setup.isolation.sandbox())
            .await;
        for skipped in &found.skipped {
            tracing::info!("scenario library: passed over {skipped}");
        }
        match self.store.replace_library(agent, &found.scenarios).await {
            Ok(()) => tracing::info!(
                "scenario library: agent {agent} lists {} scenarios",
                found.scenarios.len()
            ),
            Err(e) => tracing::warn!("scenario library: cannot store agent {agent}'s: {e}"),
        }
    }

    /// The scenarios every live agent lists.
    pub async fn library(&self) -> Result<Vec<LibraryScenario>, LabError> {
        self.store.library().await.map_err(LabError::from)
    }

    /// A run naming a library scenario goes to an agent listing it: the one
    /// it names, or the first that lists it. The field error says why it
    /// cannot go anywhere.
    pub(super) async fn place_library_run(
        &self,
        params: &mut RunParams,
    ) -> Result<Option<FieldError>, LabError> {
        let ScenarioSpec::Library { spec } = &params.scenario else {
            return Ok(None);
        };
        let listing = self.library().await?;
        let mut holders = listing.iter().filter(|s| &s.spec == spec).map(|s| &s.agent);
        let field = |message: String| {
            Ok(Some(FieldError {
                field: "scenario".into(),
                message,
            }))
        };
        let agent = match &params.agent {
            Some(agent) if holders.any(|a| a == agent) => agent.clone(),
            Some(agent) => return field(format!("agent {agent} lists no scenario `{spec}`")),
            None => match holders.next() {
                Some(agent) => agent.clone(),
                None => return field(format!("no agent lists a scenario `{spec}`")),
            },
        };
        params.agent = Some(agent);
        Ok(None)
    }
}
