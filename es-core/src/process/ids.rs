//! Ids derived from names, so that running a handler again yields the same ids: the same
//! command ids (which the repository's idempotency turns into "already applied") and the
//! same deadline ids.

use uuid::Uuid;

/// A name-based UUID (version 8, RFC 9562) over FNV-1a 128 of `parts`, each prefixed by its
/// length so that `("ab", "c")` and `("a", "bc")` differ.
///
/// Not v5: that needs SHA-1, a dependency the workspace does not have; these ids need to be
/// stable and collision-free among one store's commands, not cryptographic.
pub(crate) fn derived_id(parts: &[&[u8]]) -> Uuid {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u128::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for part in parts {
        feed(&(part.len() as u64).to_le_bytes());
        feed(part);
    }
    uuid::Builder::from_custom_bytes(hash.to_be_bytes()).into_uuid()
}

/// The id of the `index`th command a process sends in reaction to `cause` (an event id or a
/// deadline id).
pub(crate) fn command_id(process: &str, cause: Uuid, index: usize) -> Uuid {
    derived_id(&[
        b"command",
        process.as_bytes(),
        cause.as_bytes(),
        &(index as u64).to_le_bytes(),
    ])
}

/// The id of the deadline `key` scheduled in reaction to `cause`.
pub(crate) fn deadline_id(process: &str, cause: Uuid, key: &str) -> Uuid {
    derived_id(&[
        b"deadline",
        process.as_bytes(),
        cause.as_bytes(),
        key.as_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_tell_their_inputs_apart() {
        let cause = Uuid::from_u128(7);
        assert_eq!(command_id("p", cause, 0), command_id("p", cause, 0));
        assert_ne!(command_id("p", cause, 0), command_id("p", cause, 1));
        assert_ne!(command_id("p", cause, 0), command_id("q", cause, 0));
        assert_ne!(derived_id(&[b"ab", b"c"]), derived_id(&[b"a", b"bc"]));
        assert_eq!(command_id("p", cause, 0).get_version_num(), 8);
    }
}
