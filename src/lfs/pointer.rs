//! LFS pointer files (git-lfs's spec v1): what a blob holds in place of a large file.

/// The most a pointer can be; git-lfs reads no more than this when looking for one.
pub const MAX_POINTER_SIZE: usize = 1024;

/// One pointer: the object's SHA-256 (64 lowercase hex digits) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pointer {
    pub oid: String,
    pub size: u64,
}

impl Pointer {
    /// Reads a pointer, or `None` when `data` is not one (a file marked LFS but committed
    /// without git-lfs keeps its contents, as git-lfs leaves it).
    pub fn parse(data: &[u8]) -> Option<Pointer> {
        if data.len() > MAX_POINTER_SIZE {
            return None;
        }
        let text = std::str::from_utf8(data).ok()?;
        let mut lines = text.lines();
        let version = lines.next()?.strip_prefix("version ")?;
        if version != "https://git-lfs.github.com/spec/v1"
            && version != "https://hawser.github.com/spec/v1"
        {
            return None;
        }
        let (mut oid, mut size) = (None, None);
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            match key {
                "oid" => oid = value.strip_prefix("sha256:").map(str::to_string),
                "size" => size = value.parse::<u64>().ok(),
                // Extension lines (`ext-0-…`) and others are allowed; we need none of them.
                _ => {}
            }
        }
        let oid = oid.filter(|o| {
            o.len() == 64 && o.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })?;
        Some(Pointer { oid, size: size? })
    }

    /// Where git-lfs keeps the object under `.git/lfs/objects/`.
    pub fn store_path(&self) -> String {
        format!("{}/{}/{}", &self.oid[0..2], &self.oid[2..4], self.oid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn pointers_are_recognised_and_nothing_else() {
        let text =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n");
        let p = Pointer::parse(text.as_bytes()).unwrap();
        assert_eq!(p.oid, OID);
        assert_eq!(p.size, 12345);
        assert_eq!(p.store_path(), format!("4d/7a/{OID}"));
        for bad in [
            String::from("just a file\n"),
            text.replace("sha256:", "sha1:"),
            text.replace("size 12345", "size many"),
            text.replace(OID, &OID.to_uppercase()),
            text.replace(OID, "../../etc/passwd"),
            text.replace("spec/v1", "spec/v9"),
            format!("{text}{}", "x".repeat(1100)),
        ] {
            assert_eq!(Pointer::parse(bad.as_bytes()), None, "{bad}");
        }
    }
}
