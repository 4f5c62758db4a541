//! The NodeManager pod's Hadoop configuration, rendered before the NM starts (the pod's
//! `hadoop-conf` init container, docs/images.md).
//!
//! The pool's ConfigMap holds what every NM of the pool shares (`yarn-site.xml`, `core-site.xml`,
//! ...); each pod has settings of its own (host name, ports, starting capacity, keytab). A
//! ConfigMap volume is read-only and Hadoop reads only the files in `HADOOP_CONF_DIR`, so the
//! init container copies the ConfigMap's files into a writable folder and writes each pod
//! setting into the file it belongs to. A setting comes as an environment variable named
//! `<FILE>.XML_<key>` (`YARN-SITE.XML_yarn.nodemanager.hostname=...` goes into `yarn-site.xml`),
//! the names Apache Hadoop's own images use, so a pod spec reads the same either way.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Why the configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A file could not be read, listed or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A `*-site.xml` of the ConfigMap is not a Hadoop configuration file.
    #[error("{file}: not a Hadoop configuration file: {message}")]
    Parse {
        /// The file's name.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// A setting's variable names no file or no key.
    #[error(
        "{name}: a setting is named <FILE>.XML_<key>, like YARN-SITE.XML_yarn.nodemanager.hostname"
    )]
    BadSettingName {
        /// The variable's name.
        name: String,
    },
}

/// One property of a Hadoop configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// `yarn.nodemanager.hostname`.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Marked `<final>true</final>`.
    pub is_final: bool,
}

/// The pod's settings, by file name (`yarn-site.xml`), in the order given.
pub type Settings = BTreeMap<String, Vec<(String, String)>>;

/// The settings among environment variables: every `<FILE>.XML_<key>` variable; others are
/// ignored.
pub fn settings_from_env(
    variables: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, RenderError> {
    let mut settings = Settings::new();
    for (name, value) in variables {
        let Some((file, key)) = name.split_once(".XML_") else {
            continue;
        };
        if file.is_empty() || key.is_empty() || file.contains('/') {
            return Err(RenderError::BadSettingName { name });
        }
        settings
            .entry(format!("{}.xml", file.to_ascii_lowercase()))
            .or_default()
            .push((key.to_owned(), value));
    }
    Ok(settings)
}

/// The properties of a Hadoop configuration file, in order.
pub fn parse(file: &str, text: &str) -> Result<Vec<Property>, RenderError> {
    let parse_error = |message: String| RenderError::Parse {
        file: file.to_owned(),
        message,
    };
    let document = roxmltree::Document::parse(text).map_err(|e| parse_error(e.to_string()))?;
    let root = document.root_element();
    if !root.has_tag_name("configuration") {
        return Err(parse_error(format!(
            "the root element is <{}>, not <configuration>",
            root.tag_name().name()
        )));
    }
    let child_text = |property: roxmltree::Node<'_, '_>, name: &str| {
        property
            .children()
            .find(|child| child.has_tag_name(name))
            .map(|child| child.text().unwrap_or_default().trim().to_owned())
    };
    root.children()
        .filter(|node| node.has_tag_name("property"))
        .map(|property| {
            let name = child_text(property, "name")
                .filter(|name| !name.is_empty())
                .ok_or_else(|| parse_error("a <property> without a <name>".to_owned()))?;
            Ok(Property {
                name,
                value: child_text(property, "value").unwrap_or_default(),
                is_final: child_text(property, "final").is_some_and(|f| f == "true"),
            })
        })
        .collect()
}

/// `properties` with `settings` applied: a setting replaces the value of the property of its
/// name where it stands (the last one wins when a name repeats), or is added at the end.
pub fn apply(mut properties: Vec<Property>, settings: &[(String, String)]) -> Vec<Property> {
    for (name, value) in settings {
        match properties.iter_mut().find(|p| &p.name == name) {
            Some(property) => property.value.clone_from(value),
            None => properties.push(Property {
                name: name.clone(),
                value: value.clone(),
                is_final: false,
            }),
        }
    }
    properties
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A Hadoop configuration file holding `properties`.
pub fn write(properties: &[Property]) -> String {
    let mut text = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<configuration>\n");
    for property in properties {
        text.push_str("  <property><name>");
        text.push_str(&escape(&property.name));
        text.push_str("</name><value>");
        text.push_str(&escape(&property.value));
        text.push_str("</value>");
        if property.is_final {
            text.push_str("<final>true</final>");
        }
        text.push_str("</property>\n");
    }
    text.push_str("</configuration>\n");
    text
}

/// What [`render`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Files copied unchanged.
    pub copied: Vec<String>,
    /// Files written with the pod's settings, and how many settings each got.
    pub with_settings: Vec<(String, usize)>,
    /// Settings that replaced a property the ConfigMap marks final (the pod's own settings
    /// must hold for the NM to register as the operator expects).
    pub overrode_final: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies every file of `from` (the ConfigMap's volume: names starting with `.` are the
/// kubelet's own links and are skipped) into `to`, and writes each file of `settings` with
/// them applied. `to` is created when missing; files already there are replaced.
pub fn render(from: &Path, to: &Path, settings: &Settings) -> Result<Rendered, RenderError> {
    fs::create_dir_all(to).map_err(io(to))?;
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // `metadata` follows links: the ConfigMap's files are links into `..data`.
        if name.starts_with('.') || !fs::metadata(&path).map_err(io(&path))?.is_file() {
            continue;
        }
        files.insert(name, path);
    }
    let mut rendered = Rendered::default();
    for (name, path) in &files {
        if !settings.contains_key(name) {
            let target = to.join(name);
            fs::copy(path, &target).map_err(io(&target))?;
            rendered.copied.push(name.clone());
        }
    }
    for (name, file_settings) in settings {
        let properties = match files.get(name) {
            Some(path) => parse(name, &fs::read_to_string(path).map_err(io(path))?)?,
            None => Vec::new(),
        };
        for property in properties.iter().filter(|p| p.is_final) {
            if file_settings.iter().any(|(key, _)| key == &property.name) {
                rendered.overrode_final.push(property.name.clone());
            }
        }
        let target = to.join(name);
        fs::write(&target, write(&apply(properties, file_settings))).map_err(io(&target))?;
        rendered
            .with_settings
            .push((name.clone(), file_settings.len()));
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const SITE: &str = r#"<?xml version="1.0"?>
<configuration>
  <property><name>yarn.resourcemanager.hostname</name><value>rm.example.com</value></property>
  <property>
    <name>yarn.nodemanager.resource.cpu-vcores</name>
    <value> 64 </value>
    <description>the whole machine</description>
  </property>
  <property><name>yarn.nodemanager.hostname</name><value>0.0.0.0</value><final>true</final></property>
</configuration>"#;

    #[test]
    fn settings_are_grouped_by_the_file_their_name_gives() {
        let settings = settings_from_env(pairs(&[
            ("PATH", "/bin"),
            (
                "YARN-SITE.XML_yarn.nodemanager.hostname",
                "nm-1.example.com",
            ),
            ("CORE-SITE.XML_hadoop.tmp.dir", "/tmp/h"),
            (
                "YARN-SITE.XML_yarn.nodemanager.address",
                "nm-1.example.com:45454",
            ),
        ]))
        .unwrap();
        assert_eq!(
            settings,
            Settings::from([
                (
                    "core-site.xml".to_owned(),
                    pairs(&[("hadoop.tmp.dir", "/tmp/h")])
                ),
                (
                    "yarn-site.xml".to_owned(),
                    pairs(&[
                        ("yarn.nodemanager.hostname", "nm-1.example.com"),
                        ("yarn.nodemanager.address", "nm-1.example.com:45454"),
                    ])
                ),
            ])
        );
    }

    #[test]
    fn a_setting_without_a_key_or_file_is_refused_by_name() {
        for name in ["YARN-SITE.XML_", ".XML_yarn.x", "../etc/passwd.XML_x"] {
            let error = settings_from_env(pairs(&[(name, "v")])).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }

    #[test]
    fn settings_replace_in_place_and_new_ones_follow() {
        let properties = parse("yarn-site.xml", SITE).unwrap();
        let applied = apply(
            properties,
            &pairs(&[
                ("yarn.nodemanager.resource.cpu-vcores", "4"),
                ("yarn.nodemanager.address", "10.0.0.7:45454"),
            ]),
        );
        let names_values: Vec<(&str, &str)> = applied
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            names_values,
            [
                ("yarn.resourcemanager.hostname", "rm.example.com"),
                ("yarn.nodemanager.resource.cpu-vcores", "4"),
                ("yarn.nodemanager.hostname", "0.0.0.0"),
                ("yarn.nodemanager.address", "10.0.0.7:45454"),
            ]
        );
    }

    #[test]
    fn what_is_written_reads_back_the_same_with_markup_in_values() {
        let properties = vec![
            Property {
                name: "a.b".to_owned(),
                value: "x < y && \"q\" > z".to_owned(),
                is_final: true,
            },
            Property {
                name: "empty".to_owned(),
                value: String::new(),
                is_final: false,
            },
        ];
        assert_eq!(parse("x.xml", &write(&properties)).unwrap(), properties);
    }

    #[test]
    fn a_file_that_is_not_a_configuration_is_named_in_the_error() {
        for text in [
            "<configuration><property>",
            "<html/>",
            "<configuration><property><value>1</value></property></configuration>",
        ] {
            let error = parse("yarn-site.xml", text).unwrap_err();
            assert!(error.to_string().starts_with("yarn-site.xml: "), "{error}");
        }
    }

    #[test]
    fn render_copies_the_configmap_and_writes_the_pods_settings() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        // A ConfigMap volume: files are links into a hidden, timestamped folder.
        let data = from.path().join("..2026_12_03_16_00_00.1");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("yarn-site.xml"), SITE).unwrap();
        fs::write(data.join("log4j.properties"), "log4j.rootLogger=INFO\n").unwrap();
        std::os::unix::fs::symlink(&data, from.path().join("..data")).unwrap();
        for name in ["yarn-site.xml", "log4j.properties"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), from.path().join(name))
                .unwrap();
        }
        let settings = settings_from_env(pairs(&[
            (
                "YARN-SITE.XML_yarn.nodemanager.hostname",
                "nm-1.example.com",
            ),
            ("CORE-SITE.XML_hadoop.tmp.dir", "/var/lib/hadoop-yarn/tmp"),
        ]))
        .unwrap();
        let rendered = render(from.path(), to.path(), &settings).unwrap();
        assert_eq!(rendered.copied, ["log4j.properties"]);
        assert_eq!(
            rendered.with_settings,
            [
                ("core-site.xml".to_owned(), 1),
                ("yarn-site.xml".to_owned(), 1)
            ]
        );
        assert_eq!(rendered.overrode_final, ["yarn.nodemanager.hostname"]);
        let mut written: Vec<String> = fs::read_dir(to.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        assert_eq!(
            written,
            ["core-site.xml", "log4j.properties", "yarn-site.xml"]
        );
        let site = parse(
            "yarn-site.xml",
            &fs::read_to_string(to.path().join("yarn-site.xml")).unwrap(),
        )
        .unwrap();
        assert_eq!(site.len(), 3);
        assert_eq!(site[2].value, "nm-1.example.com");
        assert_eq!(site[0].value, "rm.example.com");
        // Rendering again (the init container restarted) replaces what is there.
        render(from.path(), to.path(), &settings).unwrap();
        assert_eq!(fs::read_dir(to.path()).unwrap().count(), 3);
    }

    #[test]
    fn a_missing_configmap_folder_is_an_error_naming_it() {
        let to = tempfile::tempdir().unwrap();
        let error =
            render(Path::new("/nonexistent/conf"), to.path(), &Settings::new()).unwrap_err();
        assert!(
            error.to_string().starts_with("/nonexistent/conf: "),
            "{error}"
        );
    }
}
