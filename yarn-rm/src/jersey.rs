//! What Hadoop's Jersey JSON writer really sends, read leniently.
//!
//! RMWebServices writes some types in Jersey's "natural" notation and others in "mapped"
//! notation, and the choice differs between Hadoop versions. In mapped notation a one-element
//! list becomes the element itself, an empty list is absent or `null`, and numbers and booleans
//! are strings. These helpers accept every form, so one client reads every Hadoop 3.x RM.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// A list written as an array, a single object, `null`, or left out.
pub fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a list, a single element or null")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_some<D2: Deserializer<'de>>(self, inner: D2) -> Result<Self::Value, D2::Error> {
            inner.deserialize_any(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|one| vec![one])
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            // A one-element list of strings, e.g. `"nodeLabels":"elastic"`.
            T::deserialize(de::value::StrDeserializer::<E>::new(text)).map(|one| vec![one])
        }
    }

    deserializer.deserialize_option(OneOrMany(PhantomData))
}

/// A number written as a JSON number or as a string (mapped notation); `null` or absent is 0.
pub fn number<'de, D>(deserializer: D) -> Result<f64, D::Error>
where
    D: Deserializer<'de>,
{
    struct Number;

    impl Visitor<'_> for Number {
        type Value = f64;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a number or a string holding one")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
            Ok(value as f64)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
            Ok(value as f64)
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
            Ok(value)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<f64, E> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(0.0);
            }
            text.parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
        }

        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(0.0)
        }
    }

    deserializer.deserialize_any(Number)
}

/// An integer written as a number or a string; fractions are refused.
pub fn integer<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    let value = number(deserializer)?;
    if value.fract() != 0.0 || !value.is_finite() || value.abs() > 9.0e15 {
        return Err(de::Error::custom(format!("{value} is not an integer")));
    }
    Ok(value as i64)
}

/// A boolean written as `true`/`false` or as the strings `"true"`/`"false"`.
pub fn boolean<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: Deserializer<'de>,
{
    struct Boolean;

    impl Visitor<'_> for Boolean {
        type Value = bool;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a boolean or \"true\"/\"false\"")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
            }
        }
    }

    deserializer.deserialize_any(Boolean)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Holder {
        #[serde(default, deserialize_with = "one_or_many")]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        #[serde(deserialize_with = "integer")]
        n: i64,
        #[serde(default, deserialize_with = "boolean")]
        flag: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Labels {
        #[serde(default, deserialize_with = "one_or_many")]
        labels: Vec<String>,
    }

    #[test]
    fn every_list_form_reads_the_same() {
        let forms = [
            (r#"{"items":[{"n":1},{"n":2}]}"#, vec![1, 2]),
            (r#"{"items":{"n":7}}"#, vec![7]),
            (r#"{"items":[{"n":"7"}]}"#, vec![7]),
            (r#"{"items":null}"#, vec![]),
            (r#"{}"#, vec![]),
            (r#"{"items":[]}"#, vec![]),
        ];
        for (json, expected) in forms {
            let holder: Holder = serde_json::from_str(json).expect(json);
            let numbers: Vec<i64> = holder.items.iter().map(|item| item.n).collect();
            assert_eq!(numbers, expected, "{json}");
        }
    }

    #[test]
    fn a_lone_string_is_a_one_element_list() {
        let labels: Labels = serde_json::from_str(r#"{"labels":"elastic"}"#).expect("parse");
        assert_eq!(labels.labels, vec!["elastic".to_owned()]);
    }

    #[test]
    fn strings_hold_numbers_and_booleans_in_mapped_notation() {
        let item: Item = serde_json::from_str(r#"{"n":"42","flag":"true"}"#).expect("parse");
        assert_eq!(item, Item { n: 42, flag: true });
        let item: Item = serde_json::from_str(r#"{"n":42,"flag":false}"#).expect("parse");
        assert!(!item.flag);
    }

    #[test]
    fn malformed_values_are_errors_not_zeros() {
        assert!(serde_json::from_str::<Item>(r#"{"n":"forty"}"#).is_err());
        assert!(serde_json::from_str::<Item>(r#"{"n":1.5}"#).is_err());
        assert!(serde_json::from_str::<Item>(r#"{"n":1,"flag":"yes"}"#).is_err());
    }
}
