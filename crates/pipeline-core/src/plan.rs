//! Plans: which stages run for a branch, and what each needs.

use serde::{Deserialize, Serialize};

use crate::config::{Config, DeployMode, ScannerName};

/// The kinds of stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// Build the image.
    Build,
    /// Run the test command in the image.
    Test,
    /// Run a scanner, or gate the findings.
    Scan,
    /// Push (or promote) the image.
    Push,
    /// Wait for approvals of the digest.
    Approve,
    /// Deploy to an environment.
    Deploy,
    /// A user-defined stage.
    Custom,
}

impl StageKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Build => "build",
            StageKind::Test => "test",
            StageKind::Scan => "scan",
            StageKind::Push => "push",
            StageKind::Approve => "approve",
            StageKind::Deploy => "deploy",
            StageKind::Custom => "custom",
        }
    }
}

/// One stage in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    /// Unique id (`build`, `scan:trivy`, `gate`, `deploy:dev`).
    pub id: String,
    /// Kind.
    pub kind: StageKind,
    /// Ids of the stages that must succeed first.
    pub needs: Vec<String>,
    /// What it does, in one line.
    pub description: String,
}

/// The stages for one branch, in a valid execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The branch planned for (`None` for `--local`).
    pub branch: Option<String>,
    /// The environment it deploys to.
    pub environment: Option<String>,
    /// Build, test and scan only.
    pub local: bool,
    /// Stages in order.
    pub stages: Vec<PlannedStage>,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The branch deploys nowhere.
    #[error("branch `{branch}` is not configured; configured branches: {}", configured.join(", "))]
    UnknownBranch {
        /// The branch asked for.
        branch: String,
        /// The configured branches.
        configured: Vec<String>,
    },
    /// A stage needs a stage that does not exist.
    #[error("stage `{stage}` needs unknown stage `{need}`")]
    UnknownNeed {
        /// The stage.
        stage: String,
        /// The missing dependency.
        need: String,
    },
    /// Stage dependencies form a cycle.
    #[error("stages form a cycle through `{stage}`")]
    Cycle {
        /// A stage on the cycle.
        stage: String,
    },
    /// Two stages share an id.
    #[error("two stages are named `{stage}`")]
    DuplicateStage {
        /// The id.
        stage: String,
    },
}

fn stage(id: &str, kind: StageKind, needs: &[&str], description: String) -> PlannedStage {
    PlannedStage {
        id: id.to_string(),
        kind,
        needs: needs.iter().map(|s| s.to_string()).collect(),
        description,
    }
}

/// The build → test → scan → gate part shared by every plan.
fn build_and_scan(config: &Config, stages: &mut Vec<PlannedStage>) {
    stages.push(stage(
        "build",
        StageKind::Build,
        &[],
        format!(
            "build {} from {}",
            config.image.repository,
            config.image.dockerfile.display()
        ),
    ));
    let mut gate_needs = vec!["build".to_string()];
    if let Some(test) = &config.test {
        stages.push(stage(
            "test",
            StageKind::Test,
            &["build"],
            format!("run `{}` in the image", test.command.join(" ")),
        ));
        gate_needs.push("test".into());
    }
    for sc in &config.scan.scanners {
        let (needs, what): (&[&str], &str) = match sc {
            ScannerName::Trivy => (
                &["build"],
                "scan the image for vulnerabilities, misconfigurations and secrets",
            ),
            ScannerName::Semgrep => (&[], "static analysis of the source"),
            ScannerName::Sarif => (&[], "import SARIF reports"),
            ScannerName::Audit => (&[], "audit the compose stacks and Traefik setup"),
        };
        let id = format!("scan:{}", sc.as_str());
        stages.push(stage(&id, StageKind::Scan, needs, what.to_string()));
        gate_needs.push(id);
    }
    stages.push(PlannedStage {
        id: "gate".into(),
        kind: StageKind::Scan,
        needs: gate_needs,
        description: "gate the findings against the policy (fails closed)".into(),
    });
}

/// Plans the stages for a push to `branch`.
pub fn plan_for_branch(config: &Config, branch: &str) -> Result<Plan, PlanError> {
    let Some(env) = config.environment_for_branch(branch) else {
        return Err(PlanError::UnknownBranch {
            branch: branch.to_string(),
            configured: config.branches().iter().map(|s| s.to_string()).collect(),
        });
    };
    let mut stages = Vec::new();
    let push_id;
    if let Some(from) = &env.promote_from {
        push_id = "promote";
        stages.push(stage(
            "promote",
            StageKind::Push,
            &[],
            format!(
                "promote the digest `{from}` runs to {} (no rebuild)",
                env.name
            ),
        ));
    } else {
        build_and_scan(config, &mut stages);
        push_id = "push";
        let dest = match &config.registry {
            Some(r) => format!("push the image by digest to {}", r.host),
            None => "push the image by digest to the embedded OCI store".to_string(),
        };
        stages.push(stage("push", StageKind::Push, &["gate"], dest));
    }
    let deploy_id = format!("deploy:{}", env.name);
    if env.deploy == DeployMode::Approval {
        let required = env.approval.as_ref().map(|a| a.required).unwrap_or(1);
        stages.push(stage(
            "approve",
            StageKind::Approve,
            &[push_id],
            format!(
                "require {required} signed approval(s) of the digest for {}",
                env.name
            ),
        ));
        stages.push(stage(
            &deploy_id,
            StageKind::Deploy,
            &["approve"],
            deploy_description(env),
        ));
    } else {
        stages.push(stage(
            &deploy_id,
            StageKind::Deploy,
            &[push_id],
            deploy_description(env),
        ));
    }
    let plan = Plan {
        branch: Some(branch.to_string()),
        environment: Some(env.name.clone()),
        local: false,
        stages,
    };
    check_dag(&plan.stages)?;
    Ok(plan)
}

fn deploy_description(env: &crate::config::Environment) -> String {
    format!(
        "deploy to {} ({} rollout, compose project `{}`, {} in {})",
        env.name,
        env.rollout.strategy.as_str(),
        env.compose_project,
        env.tag_variable,
        env.env_file
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    )
}

/// Plans the developer's local check: build, test and scan, nothing pushed or deployed.
pub fn plan_local(config: &Config) -> Plan {
    let mut stages = Vec::new();
    build_and_scan(config, &mut stages);
    Plan {
        branch: None,
        environment: None,
        local: true,
        stages,
    }
}

/// Checks that stage ids are unique, needs exist and there is no cycle; returns a topological
/// order (indices) that keeps the given order where it can.
pub fn check_dag(stages: &[PlannedStage]) -> Result<Vec<usize>, PlanError> {
    let mut index = std::collections::BTreeMap::new();
    for (i, s) in stages.iter().enumerate() {
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(PlanError::DuplicateStage {
                stage: s.id.clone(),
            });
        }
    }
    for s in stages {
        for n in &s.needs {
            if !index.contains_key(n.as_str()) {
                return Err(PlanError::UnknownNeed {
                    stage: s.id.clone(),
                    need: n.clone(),
                });
            }
        }
    }
    let mut done = vec![false; stages.len()];
    let mut order = Vec::with_capacity(stages.len());
    while order.len() < stages.len() {
        let next = (0..stages.len())
            .find(|&i| !done[i] && stages[i].needs.iter().all(|n| done[index[n.as_str()]]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                let stuck = (0..stages.len()).find(|&i| !done[i]).unwrap_or(0);
                return Err(PlanError::Cycle {
                    stage: stages[stuck].id.clone(),
                });
            }
        }
    }
    Ok(order)
}
