//! The OpenAPI 3 description of the JSON API. It is generated from the handlers' annotations
//! and from the very types they answer with (utoipa), so it cannot drift from the code; a test
//! checks that it names exactly the `/api` routes of the route table. Served as JSON at
//! `/api/openapi.json`, and as a page for people at `/api/docs`.

use std::sync::LazyLock;

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, HttpMethod, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::web::api::view::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FocusFlow API",
        description = "Meeting recordings in, summaries out. Create a job from a link, an \
            upload or a transcript; follow it through resolve, download, transcribe and \
            summarize; read, search, edit and export the results.\n\n\
            Every error is JSON `{\"error\": \"…\"}` with a fitting status. When the server \
            runs with `BASIC_AUTH_USER` and `BASIC_AUTH_PASSWORD`, every route but \
            `/api/health` needs HTTP Basic auth. Requests are rate limited per client \
            (`429` with `Retry-After`).",
        license(name = "MIT"),
    ),
    paths(
        crate::web::api::jobs::health,
        crate::web::api::archive::list_jobs,
        crate::web::api::jobs::create_job,
        crate::web::api::jobs::get_job,
        crate::web::api::archive::patch_job,
        crate::web::api::jobs::delete_job,
        crate::web::api::archive::export,
        crate::web::api::jobs::retry_job,
        crate::web::api::jobs::regenerate_summary,
        crate::web::api::jobs::resummarize,
        crate::web::api::jobs::transcript,
        crate::web::api::logs::stream,
        crate::web::api::intake::set_speakers,
        crate::web::api::intake::list_templates,
        crate::web::api::ask::ask,
        openapi_json,
    ),
    components(schemas(ErrorBody, crate::web::api::archive::ExportFormat)),
    modifiers(&CommonAnswers),
    tags(
        (name = "jobs", description = "Create jobs and follow them through the pipeline"),
        (name = "archive", description = "Find, edit and export finished meetings"),
        (name = "ask", description = "Questions answered from the meetings, with citations"),
        (name = "health", description = "For load balancers and health checks"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub static DOCUMENT: LazyLock<Document> = LazyLock::new(ApiDoc::openapi);

/// The document as served: it never changes while the server runs.
static DOCUMENT_JSON: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&*DOCUMENT).expect("the OpenAPI document serialises"));

/// The OpenAPI version the document declares, for the API page.
static OPENAPI_VERSION: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_value(&DOCUMENT.openapi)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_else(|| "3.1.0".into())
});

/// The API page's operations, worked out (Markdown rendered) once.
static OPERATIONS: LazyLock<Vec<OperationView>> = LazyLock::new(operations);

/// Adds the answers every operation can give to each operation that does not describe them
/// itself: 401 (Basic auth), 429 (rate limit), the 400 of malformed input and, for a path with
/// a job id, the 404 of an unknown job.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, document: &mut Document) {
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                ErrorBody::name(),
                            ))))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in document.paths.paths.iter_mut() {
            let public = path == "/api/health";
            for method in [
                HttpMethod::Get,
                HttpMethod::Post,
                HttpMethod::Put,
                HttpMethod::Patch,
                HttpMethod::Delete,
            ] {
                let Some(operation) = operation_mut(item, method) else {
                    continue;
                };
                let answers = &mut operation.responses.responses;
                if !public {
                    answers.entry("401".into()).or_insert_with(|| {
                        error("Basic auth is on and the credentials are missing or wrong")
                    });
                    answers.entry("429".into()).or_insert_with(|| {
                        error("Too many requests from this client; see `Retry-After`")
                    });
                }
                let has_input = operation.request_body.is_some()
                    || operation
                        .parameters
                        .as_ref()
                        .is_some_and(|parameters| !parameters.is_empty());
                if has_input {
                    answers.entry("400".into()).or_insert_with(|| {
                        error("Input that is not understood, named in the message")
                    });
                }
                if path.contains("{id}") {
                    answers
                        .entry("404".into())
                        .or_insert_with(|| error("No such job"));
                }
            }
        }
    }
}

fn operation_mut(
    item: &mut utoipa::openapi::PathItem,
    method: HttpMethod,
) -> Option<&mut Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// This description, as OpenAPI 3 JSON.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "health",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        DOCUMENT_JSON.as_slice(),
    )
        .into_response()
}

/// The operations of the document, in order, for the API page.
fn operations() -> Vec<OperationView> {
    let mut list = Vec::new();
    for (path, item) in &DOCUMENT.paths.paths {
        let mut item = item.clone();
        for (method, name) in [
            (HttpMethod::Get, "GET"),
            (HttpMethod::Post, "POST"),
            (HttpMethod::Put, "PUT"),
            (HttpMethod::Patch, "PATCH"),
            (HttpMethod::Delete, "DELETE"),
        ] {
            let Some(operation) = operation_mut(&mut item, method) else {
                continue;
            };
            let text = [operation.summary.clone(), operation.description.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n\n");
            let description = crate::markdown::render_markdown(&text);
            let parameters = operation
                .parameters
                .iter()
                .flatten()
                .filter(|parameter| parameter.name != "id")
                .map(|parameter| ParameterView {
                    name: parameter.name.clone(),
                    description: crate::markdown::render_markdown(
                        parameter.description.as_deref().unwrap_or_default(),
                    ),
                })
                .collect();
            let mut statuses: Vec<String> = operation.responses.responses.keys().cloned().collect();
            statuses.sort();
            list.push(OperationView {
                method: name,
                path: path.clone(),
                anchor: format!(
                    "{}-{}",
                    name.to_lowercase(),
                    path.replace(['/', '{', '}', '.'], "-")
                ),
                description,
                parameters,
                statuses: statuses.join(" "),
            });
        }
    }
    list
}

/// One operation as the API page shows it.
pub struct OperationView {
    pub method: &'static str,
    pub path: String,
    pub anchor: String,
    /// Sanitised HTML, from the handler's doc comment.
    pub description: String,
    pub parameters: Vec<ParameterView>,
    pub statuses: String,
}

pub struct ParameterView {
    pub name: String,
    /// Sanitised HTML.
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "api_docs.html")]
struct ApiPage {
    operations: &'static [OperationView],
    openapi_version: &'static str,
    origin: String,
}

/// `GET /api/docs`: the operations for people; the document itself to clients that ask for
/// JSON.
pub async fn docs_page(headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if crate::web::error::wants_json(accept) {
        return openapi_json().await;
    }
    // The examples use the address the page was asked for, when it looks like one.
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host.len() <= 255
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost:3000");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    ApiPage {
        operations: &OPERATIONS,
        openapi_version: &OPENAPI_VERSION,
        origin: format!("{scheme}://{host}"),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn documented() -> BTreeSet<(String, String)> {
        let document = serde_json::to_value(&*DOCUMENT).unwrap();
        let mut found = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
        found
    }

    #[test]
    fn the_document_names_exactly_the_api_routes() {
        let routed: BTreeSet<(String, String)> = crate::web::routes()
            .into_iter()
            .filter(|(_, path)| path.starts_with("/api/") && *path != "/api/docs")
            .map(|(method, path)| (method.to_string(), path.to_string()))
            .collect();
        assert_eq!(documented(), routed);
    }

    #[test]
    fn every_operation_says_what_it_answers_and_how_it_fails() {
        let document = serde_json::to_value(&*DOCUMENT).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|status| status.starts_with('2')),
                    "{method} {path} has no success answer"
                );
                assert!(
                    operation["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty())
                        || operation["summary"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} is not described"
                );
                if path != "/api/health" {
                    assert!(responses.contains_key("401"), "{method} {path}: no 401");
                    assert!(responses.contains_key("429"), "{method} {path}: no 429");
                }
                if path.contains("{id}") {
                    assert!(responses.contains_key("404"), "{method} {path}: no 404");
                }
            }
        }
    }

    #[test]
    fn the_job_schema_has_the_contract_fields() {
        let document = serde_json::to_value(&*DOCUMENT).unwrap();
        let job = &document["components"]["schemas"]["JobView"];
        let required: BTreeSet<&str> = job["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        for field in ["id", "url", "status", "created_at", "updated_at", "logs"] {
            assert!(required.contains(field), "{field} is not required: {job}");
        }
        for field in ["meeting_date", "title", "summary", "checkpoint", "error"] {
            assert!(job["properties"].get(field).is_some(), "{field} is missing");
        }
        let statuses = &document["components"]["schemas"]["Status"]["enum"];
        assert_eq!(
            statuses,
            &serde_json::json!([
                "queued",
                "resolving",
                "downloading",
                "transcribing",
                "summarizing",
                "completed",
                "error"
            ])
        );
    }
}
