//! Serde helpers of the share frames (the list cap also serves the address record): lists and
//! byte strings whose announced length is checked against a cap before anything is reserved
//! or copied.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

/// A list of at most `MAX` items. An announced count over `MAX` (postcard's length prefix)
/// is refused before a single item is read; formats that announce no count (JSON) are
/// refused at item `MAX + 1`.
pub(crate) fn seq<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(SeqVisitor::<T, MAX>(PhantomData))
}

struct SeqVisitor<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for SeqVisitor<T, MAX> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {MAX} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let announced = seq.size_hint().unwrap_or(0);
        if announced > MAX {
            return Err(A::Error::invalid_length(announced, &self));
        }
        let mut out = Vec::with_capacity(announced);
        while let Some(item) = seq.next_element()? {
            if out.len() == MAX {
                return Err(A::Error::invalid_length(MAX + 1, &self));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// Writes bytes as a byte string (postcard: a varint length, then the bytes).
pub(super) fn ser_bytes<T: AsRef<[u8]>, S: Serializer>(b: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(b.as_ref())
}

/// Reads a byte string of at most `MAX` bytes; the length is checked before the bytes are
/// copied out of the frame.
pub(super) fn bytes<'de, D, T, const MAX: usize>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: From<Vec<u8>>,
{
    d.deserialize_byte_buf(BytesVisitor::<MAX>).map(T::from)
}

struct BytesVisitor<const MAX: usize>;

impl<'de, const MAX: usize> Visitor<'de> for BytesVisitor<MAX> {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a byte string of at most {MAX} bytes")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        if v.len() > MAX {
            return Err(E::invalid_length(v.len(), &self));
        }
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        if v.len() > MAX {
            return Err(E::invalid_length(v.len(), &self));
        }
        Ok(v)
    }

    // Formats without byte strings (JSON) write a list of numbers.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<u8>, A::Error> {
        SeqVisitor::<u8, MAX>(PhantomData).visit_seq(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Capped {
        #[serde(deserialize_with = "seq::<_, _, 3>")]
        list: Vec<u16>,
        #[serde(serialize_with = "ser_bytes", deserialize_with = "bytes::<_, _, 2>")]
        raw: Vec<u8>,
    }

    #[test]
    fn counts_over_the_cap_are_refused() {
        let ok = Capped {
            list: vec![1, 2, 3],
            raw: vec![9, 9],
        };
        let bytes = postcard::to_allocvec(&ok).unwrap();
        assert_eq!(bytes, [3, 1, 2, 3, 2, 9, 9]);
        assert_eq!(postcard::from_bytes::<Capped>(&bytes).unwrap(), ok);
        // A count of 4, and a count of u64::MAX with nothing behind it.
        assert!(postcard::from_bytes::<Capped>(&[4, 1, 2, 3, 4, 0]).is_err());
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(postcard::from_bytes::<Capped>(&huge).is_err());
        assert!(postcard::from_bytes::<Capped>(&[0, 3, 1, 2, 3]).is_err());
        assert!(serde_json::from_str::<Capped>(r#"{"list":[1,2,3,4],"raw":[]}"#).is_err());
        assert!(serde_json::from_str::<Capped>(r#"{"list":[],"raw":[1,2,3]}"#).is_err());
        assert!(serde_json::from_str::<Capped>(r#"{"list":[1],"raw":[1,2]}"#).is_ok());
    }
}
