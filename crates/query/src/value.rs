//! Property values as the engine holds them: one interned dictionary per
//! column, so that rows carry a `u32` code and every test or grouping is
//! decided once per distinct value instead of once per row.

use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// The code of "not set" in a column.
pub(crate) const MISSING: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(Arc<str>),
    /// Integers and floats are one numeric type.
    Num(f64),
    Bool(bool),
    /// A list or an object, as compact JSON text.
    Json(Arc<str>),
}

impl Value {
    pub(crate) fn to_json(&self) -> Json {
        match self {
            Value::Str(text) => Json::from(text.as_ref()),
            Value::Num(number) => number_json(*number),
            Value::Bool(flag) => Json::from(*flag),
            Value::Json(text) => serde_json::from_str(text).unwrap_or(Json::Null),
        }
    }

    pub(crate) fn as_number(&self) -> Option<f64> {
        match self {
            Value::Num(number) => Some(*number),
            _ => None,
        }
    }

    /// The value of a filter operand or a JSON property.
    pub(crate) fn from_json(json: &Json) -> Option<Value> {
        match json {
            Json::Null => None,
            Json::String(text) => Some(Value::Str(text.as_str().into())),
            Json::Number(number) => Some(Value::Num(number.as_f64().unwrap_or(f64::NAN))),
            Json::Bool(flag) => Some(Value::Bool(*flag)),
            Json::Array(_) | Json::Object(_) => Some(Value::Json(json.to_string().into())),
        }
    }
}

/// A number as JSON: integral values as integers, so that `3` stays `3`.
pub(crate) fn number_json(number: f64) -> Json {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        Json::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map(Json::Number).unwrap_or(Json::Null)
    }
}

/// Interns values to dense codes.
#[derive(Debug, Default)]
pub(crate) struct Dictionary {
    pub(crate) values: Vec<Value>,
    strings: HashMap<Box<str>, u32>,
    numbers: HashMap<u64, u32>,
    booleans: [Option<u32>; 2],
    jsons: HashMap<Box<str>, u32>,
}

impl Dictionary {
    fn push(&mut self, value: Value) -> u32 {
        self.values.push(value);
        (self.values.len() - 1) as u32
    }

    pub(crate) fn string(&mut self, text: &str) -> u32 {
        if let Some(code) = self.strings.get(text) {
            return *code;
        }
        let code = self.push(Value::Str(text.into()));
        self.strings.insert(text.into(), code);
        code
    }

    pub(crate) fn number(&mut self, number: f64) -> u32 {
        // -0.0 and 0.0 are one value.
        let bits = if number == 0.0 { 0 } else { number.to_bits() };
        if let Some(code) = self.numbers.get(&bits) {
            return *code;
        }
        let code = self.push(Value::Num(number));
        self.numbers.insert(bits, code);
        code
    }

    pub(crate) fn boolean(&mut self, flag: bool) -> u32 {
        if let Some(code) = self.booleans[flag as usize] {
            return code;
        }
        let code = self.push(Value::Bool(flag));
        self.booleans[flag as usize] = Some(code);
        code
    }

    /// A value taken from another dictionary.
    pub(crate) fn intern(&mut self, value: &Value) -> u32 {
        match value {
            Value::Str(text) => self.string(text),
            Value::Num(number) => self.number(*number),
            Value::Bool(flag) => self.boolean(*flag),
            Value::Json(text) => self.json_text(text),
        }
    }

    fn json_text(&mut self, text: &str) -> u32 {
        if let Some(code) = self.jsons.get(text) {
            return *code;
        }
        let code = self.push(Value::Json(text.into()));
        self.jsons.insert(text.into(), code);
        code
    }

    pub(crate) fn json(&mut self, json: &Json) -> u32 {
        let text = json.to_string();
        if let Some(code) = self.jsons.get(text.as_str()) {
            return *code;
        }
        let code = self.push(Value::Json(text.as_str().into()));
        self.jsons.insert(text.into_boxed_str(), code);
        code
    }
}

/// Codes in the narrowest width the dictionary allows: most properties have
/// few distinct values, and a column is as long as the table.
#[derive(Debug)]
pub(crate) enum Codes {
    Narrow(Vec<u8>),
    Medium(Vec<u16>),
    Wide(Vec<u32>),
}

impl Codes {
    /// Narrows codes built as `u32`s (with `MISSING` for "not set").
    pub(crate) fn narrowed(codes: Vec<u32>, n_values: usize) -> Codes {
        let narrow = |limit: u32| move |code: &u32| if *code == MISSING { limit } else { *code };
        if n_values < u8::MAX as usize {
            Codes::Narrow(codes.iter().map(narrow(u8::MAX as u32)).map(|c| c as u8).collect())
        } else if n_values < u16::MAX as usize {
            Codes::Medium(codes.iter().map(narrow(u16::MAX as u32)).map(|c| c as u16).collect())
        } else {
            Codes::Wide(codes)
        }
    }

    /// The code at `row`, `MISSING` for "not set".
    #[inline(always)]
    pub(crate) fn get(&self, row: usize) -> u32 {
        match self {
            Codes::Narrow(codes) => match codes[row] {
                u8::MAX => MISSING,
                code => u32::from(code),
            },
            Codes::Medium(codes) => match codes[row] {
                u16::MAX => MISSING,
                code => u32::from(code),
            },
            Codes::Wide(codes) => codes[row],
        }
    }
}

/// One property in table order (or unit order, for profiles): a code per
/// row into `dictionary`.
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) codes: Codes,
    pub(crate) dictionary: Dictionary,
}

impl Column {
    pub(crate) fn new(codes: Vec<u32>, dictionary: Dictionary) -> Column {
        Column { codes: Codes::narrowed(codes, dictionary.values.len()), dictionary }
    }


    /// The numeric value of each code (NaN where not a number).
    pub(crate) fn numbers(&self) -> Vec<f64> {
        self.dictionary.values.iter().map(|v| v.as_number().unwrap_or(f64::NAN)).collect()
    }
}

/// Orders segment labels: booleans, numbers, strings, JSON text; null last.
pub fn compare_segments(a: &Json, b: &Json) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(value: &Json) -> u8 {
        match value {
            Json::Bool(_) => 0,
            Json::Number(_) => 1,
            Json::String(_) => 2,
            Json::Array(_) | Json::Object(_) => 3,
            Json::Null => 4,
        }
    }
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal),
        (Json::String(x), Json::String(y)) => x.cmp(y),
        _ if rank(a) == rank(b) => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_narrow_to_the_dictionary_and_keep_missing() {
        for n_values in [3usize, 300, 70_000] {
            let codes: Vec<u32> = (0..n_values as u32).chain([MISSING, 0]).collect();
            let narrowed = Codes::narrowed(codes.clone(), n_values);
            let width = match &narrowed {
                Codes::Narrow(_) => 1,
                Codes::Medium(_) => 2,
                Codes::Wide(_) => 4,
            };
            assert_eq!(width, if n_values < 255 { 1 } else if n_values < 65_535 { 2 } else { 4 });
            for (row, code) in codes.iter().enumerate() {
                assert_eq!(narrowed.get(row), *code, "{n_values} values, row {row}");
            }
        }
    }
}
