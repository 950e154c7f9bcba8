//! Validates request bodies against Discord's official OpenAPI 3.1 spec, vendored in
//! `tests/data/discord-api-spec/openapi.json` (MIT, its `LICENSE` and provenance beside it).
//!
//! [`validate`] finds the operation whose path template matches a request path
//! (`/api/v10` prefix and query string stripped; literal segments such as `@me` or
//! `@original` win over `{param}` segments), takes its request-body schema
//! (`application/json`, else `multipart/form-data`: for multipart requests pass the parsed
//! `payload_json`) and validates with the `jsonschema` crate as JSON Schema 2020-12, which is
//! what OpenAPI 3.1 schemas are (nullable as `type: [.., "null"]`, `oneOf`/`anyOf`, `$ref`s into
//! `#/components/...`).
//!
//! The spec is part of the repository, so validation always runs: a missing or unreadable
//! file panics with its path (every check that validates fails), it never lets a body pass.
//!
//! Relaxed on purpose, by patching the schema once at load (see [`relax`]); nothing else is:
//! - `attachments[].id` (`MessageAttachmentRequest.id`): the spec says snowflake string, serenity
//!   sends the attachment's index as an integer and Discord accepts it;
//! - permission bit-sets in request schemas (`default_member_permissions`, `permissions`,
//!   `allow`, `deny`): the spec says integer, serenity/poise send strings of digits such as
//!   `"1099511627776"` (Discord accepts both).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

/// The spec, relative to `CARGO_MANIFEST_DIR`.
pub const SPEC_RELATIVE_PATH: &str = "tests/data/discord-api-spec/openapi.json";

/// Property names holding permission bit-sets in Discord request bodies.
const PERMISSION_FIELDS: [&str; 4] = ["default_member_permissions", "permissions", "allow", "deny"];

/// Where the spec is looked for.
pub fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC_RELATIVE_PATH)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

#[derive(Debug)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    /// The request-body schema (may hold `$ref`s into `#/components`), if the operation has one.
    body_schema: Option<Value>,
}

struct Spec {
    operations: Vec<Operation>,
    /// `components`, relaxed; embedded into every compiled schema so `$ref`s resolve.
    components: Value,
    /// Compiled validators by "METHOD template".
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The spec, loaded once. Panics when the file is missing or is not JSON: the checks that
/// validate must fail, not pass unchecked.
fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = spec_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "discord_spec: Discord's OpenAPI spec is missing at {} ({e}); it is part of the \
                 repository (tests/data/discord-api-spec/): restore it, request bodies cannot be \
                 validated without it",
                path.display()
            )
        });
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("discord_spec: {} is not JSON: {e}", path.display()));
        let spec = Spec::load(doc);
        assert!(
            spec.operations.len() > 100,
            "discord_spec: {} holds only {} operations; is it Discord's spec?",
            path.display(),
            spec.operations.len()
        );
        spec
    })
}

impl Spec {
    fn load(mut doc: Value) -> Spec {
        let mut components = doc
            .get_mut("components")
            .map(Value::take)
            .unwrap_or_else(|| json!({}));
        if let Some(schemas) = components.get_mut("schemas") {
            relax(schemas);
        }
        let mut operations = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                for (method, op) in item {
                    let method = method.to_ascii_uppercase();
                    if !matches!(
                        method.as_str(),
                        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
                    ) {
                        continue;
                    }
                    let content = op.pointer("/requestBody/content");
                    let body_schema = content
                        .and_then(|c| {
                            c.get("application/json")
                                .or_else(|| c.get("multipart/form-data"))
                        })
                        .and_then(|m| m.get("schema"))
                        .cloned();
                    operations.push(Operation {
                        method,
                        template: template.clone(),
                        segments: parse_template(template),
                        body_schema,
                    });
                }
            }
        }
        Spec {
            operations,
            components,
            validators: Mutex::new(HashMap::new()),
        }
    }

    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let method = method.to_ascii_uppercase();
        let segments = request_segments(path);
        self.operations
            .iter()
            .filter(|op| op.method == method && op.segments.len() == segments.len())
            .filter(|op| {
                op.segments.iter().zip(&segments).all(|(t, s)| match t {
                    Segment::Literal(l) => l == s,
                    Segment::Param => !s.is_empty(),
                })
            })
            .max_by_key(|op| {
                op.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
    }

    fn validator(
        &self,
        op: &Operation,
        schema: &Value,
    ) -> Result<Arc<jsonschema::Validator>, String> {
        let key = format!("{} {}", op.method, op.template);
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        // The operation's schema at the root, with `components` beside it (an unknown keyword
        // to JSON Schema, but a valid JSON-pointer target for the spec's `#/components/...`).
        let mut root = match schema {
            Value::Object(map) => Value::Object(map.clone()),
            other => json!({ "allOf": [other] }),
        };
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["components"] = self.components.clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .map_err(|e| format!("cannot compile the schema of {key}: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(key, validator.clone());
        Ok(validator)
    }
}

fn parse_template(template: &str) -> Vec<Segment> {
    template
        .trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_string())
            }
        })
        .collect()
}

/// The route of a request path: query dropped, `/api` and `/api/vN` prefixes stripped.
pub fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut rest = path.strip_prefix("/api").unwrap_or(path);
    if let Some(after) = rest.strip_prefix("/v") {
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && (after.len() == digits || after[digits..].starts_with('/')) {
            rest = &after[digits..];
        }
    }
    if rest.is_empty() {
        "/".to_string()
    } else {
        rest.to_string()
    }
}

fn request_segments(path: &str) -> Vec<String> {
    route_of(path)
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

/// The spec's path template for a request (e.g. `/channels/{channel_id}/messages`), if the spec
/// has an operation for it.
pub fn operation_template(method: &str, path: &str) -> Option<String> {
    spec().operation(method, path).map(|op| op.template.clone())
}

/// Validates a JSON body (or a multipart request's parsed `payload_json`) sent to `path` with
/// `method` against the spec (panics when the spec is missing). An `Err` lists every violation as
/// `"{METHOD} {template}: {instance path}: {message}"`; a route the spec does not have, or a
/// body sent to an operation that takes none, is a violation too.
pub fn validate(method: &str, path: &str, body: &Value) -> Result<(), Vec<String>> {
    let spec = spec();
    let method_uc = method.to_ascii_uppercase();
    let route = route_of(path);
    let Some(op) = spec.operation(&method_uc, &route) else {
        return Err(vec![format!(
            "{method_uc} {route}: no such operation in Discord's OpenAPI spec"
        )]);
    };
    let Some(schema) = &op.body_schema else {
        return Err(vec![format!(
            "{method_uc} {}: the spec defines no request body, but one was sent: {body}",
            op.template
        )]);
    };
    let validator = spec.validator(op, schema).map_err(|e| vec![e])?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("{method_uc} {}: {at}: {e}", op.template)
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Patches the spec's `components.schemas` with the two documented relaxations (module docs).
fn relax(schemas: &mut Value) {
    let Some(schemas) = schemas.as_object_mut() else {
        return;
    };
    // 1. attachments[].id: snowflake string or a non-negative integer.
    if let Some(id) = schemas
        .get_mut("MessageAttachmentRequest")
        .and_then(|s| s.pointer_mut("/properties/id"))
    {
        let original = id.take();
        *id = json!({ "anyOf": [original, { "type": "integer", "minimum": 0 }] });
    }
    // 2. Permission bit-sets in request schemas: integer, or a string of digits.
    for (name, schema) in schemas.iter_mut() {
        if !name.contains("Request") {
            continue;
        }
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for field in PERMISSION_FIELDS {
            let Some(prop) = props.get_mut(field) else {
                continue;
            };
            let takes_integer = match prop.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                _ => false,
            };
            if takes_integer {
                let original = prop.take();
                *prop = json!({ "anyOf": [original, { "type": "string", "pattern": "^[0-9]+$" }] });
            }
        }
    }
}
