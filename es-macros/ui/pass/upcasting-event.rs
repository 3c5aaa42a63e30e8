//! An event at version 3 with a complete chain of upcasters.
use es_core::{Event, Payload, UpcastError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

fn v1_to_v2(mut payload: Value) -> Result<Value, UpcastError> {
    payload["currency"] = json!("EUR");
    Ok(payload)
}

fn v2_to_v3(mut payload: Value) -> Result<Value, UpcastError> {
    let cents = payload["amount"].as_u64().ok_or_else(|| UpcastError::Shape("amount is not a number".into()))? * 100;
    payload["amount"] = json!(cents);
    Ok(payload)
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "money.deposited", version = 3, upcast(from = 1, with = v1_to_v2), upcast(from = 2, with = v2_to_v3))]
pub struct Deposited {
    pub amount: u64,
    pub currency: String,
}

fn main() {
    let v1 = Payload::from_json_text(r#"{"amount":5}"#);
    let event = Deposited::decode(1, &v1).unwrap();
    assert_eq!(event, Deposited { amount: 500, currency: "EUR".into() });
}
