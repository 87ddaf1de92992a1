//! Inside GitHub Actions (`GITHUB_ACTIONS=true`): every command that produces a result also
//! appends a markdown summary to `$GITHUB_STEP_SUMMARY`, emits annotations for findings and
//! writes `image`, `tag` and `digest` to `$GITHUB_OUTPUT` where it knows them.
//!
//! Annotations are workflow commands, which the runner reads from stdout and stderr alike;
//! they go to stderr so that stdout keeps only the command's result. Outside Actions nothing
//! here does anything. A failure to write these files is a warning, never the command's
//! outcome: the result itself was already produced.

use shipline_core::ci::GithubActions;
use shipline_scanners::gate::Verdict;
use shipline_scanners::ScanReport;

use crate::Global;

/// The Actions files of this step, when running inside GitHub Actions.
pub(crate) fn detect() -> Option<GithubActions> {
    GithubActions::detect(|k| std::env::var(k).ok())
}

/// Appends `summary` to the step summary and writes `outputs` (callers get `gh` from
/// [`detect`], and build what they publish only inside Actions).
pub(crate) fn publish(
    gh: &GithubActions,
    global: &Global,
    summary: &str,
    outputs: &[(&str, &str)],
) {
    if !summary.is_empty() {
        if let Err(e) = gh.append_summary(summary) {
            global.warn(e);
        }
    }
    if !outputs.is_empty() {
        if let Err(e) = gh.set_outputs(outputs) {
            global.warn(e);
        }
    }
}

/// Inside Actions: the findings' markdown summary and one annotation per finding. `annotate`
/// is false when the command already printed the annotations as its result.
pub(crate) fn publish_findings(
    global: &Global,
    report: &ScanReport,
    verdict: &Verdict,
    annotate: bool,
) {
    let Some(gh) = detect() else {
        return;
    };
    publish(
        &gh,
        global,
        &shipline_scanners::render::render_markdown(report, verdict),
        &[("verdict", verdict.outcome.as_str())],
    );
    if annotate {
        eprint!(
            "{}",
            shipline_scanners::render::render_github(report, verdict)
        );
    }
}

/// Splits `repository:tag@digest` parts of a pushed reference into step outputs.
pub(crate) fn image_outputs<'a>(
    repository: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut out = vec![("image", repository)];
    if let Some(t) = tag {
        out.push(("tag", t));
    }
    if let Some(d) = digest {
        out.push(("digest", d));
    }
    out
}
