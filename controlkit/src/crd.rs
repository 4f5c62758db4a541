//! CRDs as the chart ships them: generated from the Rust types, written as YAML with a header,
//! and cleaned of what the API server does not understand.
//!
//! schemars gives unsigned integers formats such as `uint32`; the API server knows only
//! `int32`/`int64` for integers, `float`/`double` for numbers and a fixed list for strings, and
//! warns about every other format on each create or update of the CRD (then ignores it). The
//! bounds schemars writes beside those formats (`minimum: 0`, `maximum`) stay and are enforced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// Folder of the chart's CRDs, relative to the workspace root.
pub const CHART_CRD_DIR: &str = "charts/elastic-yarn/crds";

/// String formats the API server recognises (compared without dashes, as it does).
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "k8sshortname",
    "k8slongname",
];

/// Whether the API server recognises `format` on a schema of `type_`.
pub fn recognised_format(type_: Option<&str>, format: &str) -> bool {
    match type_ {
        Some("integer") => matches!(format, "int32" | "int64"),
        Some("number") => matches!(format, "float" | "double"),
        None | Some("string") => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
        Some(_) => false,
    }
}

/// Removes every format the API server would not recognise, everywhere in the schema.
pub fn drop_unrecognised_formats(schema: &mut JSONSchemaProps) {
    if schema
        .format
        .as_deref()
        .is_some_and(|f| !recognised_format(schema.type_.as_deref(), f))
    {
        schema.format = None;
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        drop_unrecognised_formats(child);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        for child in list.iter_mut().flatten() {
            drop_unrecognised_formats(child);
        }
    }
    if let Some(not) = schema.not.as_deref_mut() {
        drop_unrecognised_formats(not);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => drop_unrecognised_formats(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => {
            items.iter_mut().for_each(drop_unrecognised_formats);
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &mut schema.additional_properties {
        drop_unrecognised_formats(extra);
    }
}

/// File name and YAML (after `header`) of each CRD, with unrecognised formats removed.
pub fn render(
    crds: Vec<CustomResourceDefinition>,
    header: &str,
) -> Result<Vec<(String, String)>, serde_yaml::Error> {
    crds.into_iter()
        .map(|crd| {
            let crd = as_shipped(crd);
            let name = crd.metadata.name.clone().unwrap_or_default();
            Ok((
                format!("{name}.yaml"),
                format!("{header}{}", serde_yaml::to_string(&crd)?),
            ))
        })
        .collect()
}

/// A generated CRD as the chart ships it (and so as a cluster holds it): without the schema
/// formats the API server does not recognise.
pub fn as_shipped(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            drop_unrecognised_formats(schema);
        }
    }
    crd
}

/// Writes rendered CRDs into `dir`, returning the paths written.
pub fn write(dir: &Path, rendered: Vec<(String, String)>) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::with_capacity(rendered.len());
    for (file, yaml) in rendered {
        let path = dir.join(file);
        fs::write(&path, yaml)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_formats_the_api_server_knows_are_kept() {
        assert!(recognised_format(Some("integer"), "int64"));
        assert!(!recognised_format(Some("integer"), "uint32"));
        assert!(recognised_format(Some("number"), "double"));
        assert!(recognised_format(Some("string"), "date-time"));
        assert!(!recognised_format(Some("string"), "uint16"));
        let mut schema: JSONSchemaProps = serde_json::from_value(serde_json::json!({
            "type": "object",
            "properties": {
                "port": {"type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535},
                "count": {"type": "integer", "format": "int32"},
                "at": {"type": "string", "format": "date-time"},
                "ports": {"type": "array", "items": {"type": "integer", "format": "uint32"}},
                "by_name": {"type": "object", "additionalProperties": {"type": "integer", "format": "uint64"}},
            }
        }))
        .unwrap();
        drop_unrecognised_formats(&mut schema);
        let value = serde_json::to_value(&schema).unwrap();
        let properties = &value["properties"];
        assert_eq!(properties["port"].get("format"), None);
        assert_eq!(properties["port"]["maximum"], 65535.0, "bounds stay");
        assert_eq!(properties["count"]["format"], "int32");
        assert_eq!(properties["at"]["format"], "date-time");
        assert_eq!(properties["ports"]["items"].get("format"), None);
        assert_eq!(
            properties["by_name"]["additionalProperties"].get("format"),
            None
        );
    }
}
