//! Finding a file by its content id: a map from hash to one path holding it, built from the
//! tree on the first lookup and kept beside it while the share does not change.
//!
//! Cost: the map is built only once someone asks for content by id, so a share nobody asks
//! by hash pays nothing; built, it holds about 100 bytes per hashed file (the hash, one
//! path, the map's slot): some 10 MB for 100,000 files. A hash found by the hasher is added
//! in place; any other change of the tree drops the map, and the next lookup rebuilds it
//! (one pass over the tree under its read lock). Lock order: the tree, then the map, so a
//! map always matches the tree it was read from.

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock;
use super::tree::{Body, Children, Tree, join};

/// The map, when built.
#[derive(Default)]
pub(super) struct Ids(Mutex<Option<HashMap<[u8; 32], Box<str>>>>);

impl Ids {
    /// Drops the map; call with the tree's write lock held, after changing the tree.
    pub fn forget(&self) {
        *lock(&self.0) = None;
    }

    /// Notes that the file at `path` has hash `hash`; call with the tree's write lock held.
    pub fn note(&self, hash: [u8; 32], path: &str) {
        if let Some(map) = lock(&self.0).as_mut() {
            map.entry(hash).or_insert_with(|| path.into());
        }
    }

    /// A path of the tree whose file has hash `id`; `tree` must be the tree behind the
    /// read lock the caller holds.
    pub fn find(&self, tree: &Tree, id: &[u8; 32]) -> Option<String> {
        let mut map = lock(&self.0);
        let map = map.get_or_insert_with(|| build(tree));
        map.get(id).map(|p| p.to_string())
    }
}

/// The map of `tree`: each hash to the first path holding it, in listing order.
fn build(tree: &Tree) -> HashMap<[u8; 32], Box<str>> {
    let mut map = HashMap::new();
    if let Body::Dir(children) = &tree.root.body {
        add(&mut map, "", children);
    }
    map
}

fn add(map: &mut HashMap<[u8; 32], Box<str>>, dir: &str, children: &Children) {
    for (name, node) in children {
        match &node.body {
            Body::File {
                hash: Some(hash), ..
            } => {
                map.entry(*hash).or_insert_with(|| join(dir, name).into());
            }
            Body::File { hash: None, .. } => {}
            Body::Dir(sub) => add(map, &join(dir, name), sub),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::tests::{WAIT, open, options, rel};
    use tokio::time::timeout;

    #[tokio::test]
    async fn files_are_found_by_hash_until_they_change() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("a"), b"first").unwrap();
        fs::write(dir.path().join("sub/b"), b"second").unwrap();
        let index = open(dir.path(), options(false, false)).await;
        let first = *blake3::hash(b"first").as_bytes();
        let second = *blake3::hash(b"second").as_bytes();
        // Not hashed yet: not found, and the lookup built an empty map.
        assert_eq!(index.find(&first), None);
        // Hashed after the map was built: noted in place.
        let h = timeout(WAIT, index.hash(&rel("sub/b"))).await.unwrap();
        assert_eq!(h.unwrap(), second);
        let found = index.find(&second).unwrap();
        assert_eq!((found.path.as_str(), found.size), ("sub/b", 6));
        timeout(WAIT, index.hash(&rel("a"))).await.unwrap().unwrap();
        assert_eq!(index.find(&first).unwrap().path.as_str(), "a");
        // Rewritten: the old content is no longer found; the new one once hashed.
        fs::write(dir.path().join("a"), b"other bytes").unwrap();
        timeout(WAIT, index.rescan()).await.unwrap().unwrap();
        assert_eq!(index.find(&first), None);
        assert_eq!(index.find(&second).unwrap().path.as_str(), "sub/b");
        timeout(WAIT, index.hash(&rel("a"))).await.unwrap().unwrap();
        let other = *blake3::hash(b"other bytes").as_bytes();
        assert_eq!(index.find(&other).unwrap().path.as_str(), "a");
        // Removed: gone.
        fs::remove_file(dir.path().join("sub/b")).unwrap();
        timeout(WAIT, index.rescan()).await.unwrap().unwrap();
        assert_eq!(index.find(&second), None);
    }
}
