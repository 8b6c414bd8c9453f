//! The OpenAPI document: a snapshot, so that every change to the API is a visible
//! diff, and checks of the properties generated clients rely on.

use serde_json::Value;
use tandem_http::ErrorCode;

fn document() -> Value {
    serde_json::to_value(tandem_http::openapi()).expect("the document serializes")
}

/// The value with every object's keys sorted, so that the snapshot does not depend
/// on whether a build unifies `serde_json`'s `preserve_order` feature.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<String, Value> = map
                .into_iter()
                .map(|(key, value)| (key, canonical(value)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => other,
    }
}

#[test]
fn the_document_matches_its_snapshot() {
    insta::assert_json_snapshot!("openapi", canonical(document()));
}

#[test]
fn the_document_is_openapi_3_1_for_tandem() {
    let document = document();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(document["info"]["title"], "Tandem");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((method.clone(), path.clone(), operation));
        }
    }
    operations
}

#[test]
fn every_operation_is_named_tagged_and_answers_problems() {
    let document = document();
    let operations = operations(&document);
    assert!(
        operations.len() >= 32,
        "only {} operations",
        operations.len()
    );
    let mut ids = std::collections::HashSet::new();
    for (method, path, operation) in operations {
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{method} {path}: operation id {id:?}"
        );
        assert!(ids.insert(id.to_owned()), "{id} is used twice");
        assert!(
            operation["tags"]
                .as_array()
                .is_some_and(|tags| !tags.is_empty()),
            "{id} has no tag"
        );
        let public = ["join_session", "healthz", "readyz"].contains(&id);
        assert_eq!(
            operation.get("security").is_none(),
            public,
            "{id}: security scheme"
        );
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let reference = response["$ref"].as_str().unwrap_or_default();
                assert!(
                    reference.starts_with("#/components/responses/"),
                    "{id} {status} is not a shared problem response"
                );
            }
        }
        if path.starts_with("/v1/") && id != "join_session" {
            assert!(
                operation["responses"].get("401").is_some(),
                "{id} does not document 401"
            );
        }
    }
}

#[test]
fn every_problem_response_is_problem_json() {
    let document = document();
    for (name, response) in document["components"]["responses"].as_object().unwrap() {
        assert_eq!(
            response["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{name}"
        );
    }
}

#[test]
fn the_problem_schema_lists_every_code() {
    let document = document();
    let listed: Vec<&str> = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(listed, all);
    assert_eq!(
        document["components"]["schemas"]["Problem"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
}

#[test]
fn links_lead_from_created_ids_to_the_operations_that_use_them() {
    let document = document();
    let operations = operations(&document);
    let path_parameters = |id: &str| -> Vec<String> {
        let (_, _, operation) = operations
            .iter()
            .find(|(_, _, operation)| operation["operationId"] == id)
            .unwrap_or_else(|| panic!("a link names an unknown operation {id}"));
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut linked = std::collections::BTreeSet::new();
    for (_, _, operation) in &operations {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, l)| l)
            {
                let target = link["operationId"].as_str().unwrap();
                let mut given: Vec<String> = link["parameters"]
                    .as_object()
                    .into_iter()
                    .flat_map(|parameters| parameters.keys().cloned())
                    .collect();
                let mut needed = path_parameters(target);
                given.sort();
                needed.sort();
                assert_eq!(given, needed, "the link to {target} fills its path");
                linked.insert(target.to_owned());
            }
        }
    }
    for target in [
        "get_session",
        "join_session",
        "list_open_permissions",
        "answer_permission",
        "revoke_invite",
        "remove_participant",
        "approve_prompt",
        "reject_prompt",
        "withdraw_prompt",
        "cancel_prompt",
        "retry_prompt",
        "revoke_api_key",
        "delete_webhook",
    ] {
        assert!(linked.contains(target), "nothing links to {target}");
    }
}
