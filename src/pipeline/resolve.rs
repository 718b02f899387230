//! The resolve stage: a Plaud share link becomes an audio URL and a meeting date; any other
//! URL passes through as it is.

use super::{StageContext, StageResult, plaud};
use crate::jobs::Job;
use crate::net::guard::AudioUrl;
use crate::store::Changes;

/// `link` is the job's own link, checked by the guard.
pub async fn run(context: &StageContext, job: &Job, link: &AudioUrl) -> StageResult<()> {
    if !plaud::is_share_link(link.as_url()) {
        context
            .log("Not a Plaud link; using the URL as given")
            .await;
        context
            .update(Changes::new().resolved_url(Some(job.url.clone())))
            .await?;
        return Ok(());
    }

    context.log("Resolving the Plaud share link").await;
    let findings = plaud::resolve(context, link.as_url()).await;
    let audio_url = match findings.audio_url {
        Some(url) => url,
        None => {
            context
                .log("No audio URL found behind the Plaud link; trying the link itself")
                .await;
            job.url.clone()
        }
    };
    let mut changes = Changes::new().resolved_url(Some(audio_url));
    if job.meeting_date.is_none() && findings.meeting_date.is_some() {
        changes = changes.meeting_date(findings.meeting_date, job.created_at);
    }
    context.update(changes).await?;
    Ok(())
}
