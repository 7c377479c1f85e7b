//! Download tests against a local HTTP server on 127.0.0.1 serving fixture files in the official
//! formats. No test touches the internet: every URL fetched is the local server's.

// Test code: a failed unwrap is a failed test (clippy's allow-unwrap-in-tests does not reach the
// helpers of an integration-test crate).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sweep_common::DatasetKind;
use sweep_data::{ImageSet, fixtures};
use tch::Device;

use md5::{Digest, Md5};
use sweep_worker::data_cache::{DataCache, LoadError, find_or_download};
use sweep_worker::download::{
    Catalog, DownloadError, Downloads, HttpStatus, MAX_DOWNLOAD_BYTES, Source, fetch,
};

mod server;

use server::{Reply, TestServer};

const IMAGES: &str = "train-images-idx3-ubyte.gz";
const LABELS: &str = "train-labels-idx1-ubyte.gz";
const CIFAR: &str = "cifar-10-binary.tar.gz";

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// Files of a fixture dataset: (official name, bytes), and the training set they hold.
fn fashion_files(n: usize) -> (Vec<(String, Vec<u8>)>, ImageSet) {
    let src = tempfile::tempdir().unwrap();
    let set = fixtures::write_fashion_mnist(src.path(), n, 11).unwrap();
    let files = [IMAGES, LABELS]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(src.path().join(f)).unwrap()))
        .collect();
    (files, set)
}

fn cifar_files(per_batch: usize) -> (Vec<(String, Vec<u8>)>, ImageSet) {
    let src = tempfile::tempdir().unwrap();
    let set = fixtures::write_cifar10_bin_tar_gz(src.path(), per_batch, 5).unwrap();
    let bytes = std::fs::read(src.path().join(CIFAR)).unwrap();
    (vec![(CIFAR.to_owned(), bytes)], set)
}

/// A server serving `files` under `/mirror/`.
fn serve(files: &[(String, Vec<u8>)]) -> TestServer {
    let routes: HashMap<String, Reply> = files
        .iter()
        .map(|(name, bytes)| (format!("/mirror/{name}"), Reply::Body(bytes.clone())))
        .collect();
    TestServer::start(routes)
}

/// Downloads of `kind` from `server`'s mirror, checked against the MD5s of `files` (the official
/// URLs are unreachable placeholders: only the mirror may be fetched).
fn downloads(kind: DatasetKind, files: &[(String, Vec<u8>)], server: &TestServer) -> Downloads {
    let mut catalog = Catalog::default();
    catalog.insert(
        kind,
        files
            .iter()
            .map(|(name, bytes)| Source {
                file: name.clone(),
                url: format!("http://official.invalid/{name}"),
                md5: md5_hex(bytes),
            })
            .collect(),
    );
    Downloads {
        offline: false,
        mirror: Some(format!("{}/mirror/", server.url())),
        catalog,
        fallback_dir: None,
        max_bytes: MAX_DOWNLOAD_BYTES,
    }
}

/// The names in `dir`, sorted (empty if it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn missing_fashion_mnist_is_downloaded_verified_cached_and_loaded() {
    let (files, set) = fashion_files(120);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let d = downloads(DatasetKind::FashionMnist, &files, &server);

    let cache = DataCache::new(data_dir.clone(), Device::Cpu, d.clone());
    let data = cache.get(DatasetKind::FashionMnist).await.unwrap();
    assert_eq!(data.len(), 120);
    assert_eq!(
        server.requests(),
        [format!("/mirror/{IMAGES}"), format!("/mirror/{LABELS}")]
    );
    // Saved under the official names in the data folder itself, byte for byte; nothing else.
    assert_eq!(listing(&data_dir), [IMAGES, LABELS]);
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(data_dir.join(name)).unwrap(), bytes);
    }
    // The same process asks again: no new request.
    let again = cache.get(DatasetKind::FashionMnist).await.unwrap();
    assert!(Arc::ptr_eq(&data, &again));
    // A new process finds the files with the normal search: no new request, same images.
    let loaded = find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap();
    assert_eq!(loaded, set);
    assert_eq!(server.requests().len(), 2);
}

/// MNIST's files have Fashion-MNIST's names: they are saved under `mnist/` (the official catalog's
/// names), so a data folder holding Fashion-MNIST gets MNIST beside it, and each loads its own.
#[tokio::test]
async fn mnist_is_downloaded_into_its_subfolder_beside_fashion_mnist() {
    let official = Catalog::official();
    let names: Vec<&str> = official
        .sources(DatasetKind::Mnist)
        .iter()
        .map(|s| s.file.as_str())
        .collect();
    assert_eq!(
        names,
        [format!("mnist/{IMAGES}"), format!("mnist/{LABELS}")]
    );
    let src = tempfile::tempdir().unwrap();
    let set = fixtures::write_mnist(&src.path().join("mnist"), 30, 3).unwrap();
    let files: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|f| (f.to_string(), std::fs::read(src.path().join(f)).unwrap()))
        .collect();
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let fashion = fixtures::write_fashion_mnist(tmp.path(), 12, 1).unwrap();
    let d = downloads(DatasetKind::Mnist, &files, &server);

    let loaded = find_or_download(DatasetKind::Mnist, tmp.path(), &d).unwrap();
    assert_eq!(loaded, set);
    assert_eq!(
        server.requests(),
        [
            format!("/mirror/mnist/{IMAGES}"),
            format!("/mirror/mnist/{LABELS}")
        ]
    );
    assert_eq!(listing(&tmp.path().join("mnist")), [IMAGES, LABELS]);
    let again = find_or_download(DatasetKind::FashionMnist, tmp.path(), &d).unwrap();
    assert_eq!(again, fashion);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn cifar100_binary_archive_is_downloaded_and_loaded_with_fine_labels() {
    const C100: &str = "cifar-100-binary.tar.gz";
    let official = Catalog::official();
    assert_eq!(official.sources(DatasetKind::Cifar100)[0].file, C100);
    let src = tempfile::tempdir().unwrap();
    let set = fixtures::write_cifar100_bin_tar_gz(src.path(), 150, 2).unwrap();
    let files = vec![(
        C100.to_owned(),
        std::fs::read(src.path().join(C100)).unwrap(),
    )];
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let d = downloads(DatasetKind::Cifar100, &files, &server);
    let cache = DataCache::new(tmp.path().to_owned(), Device::Cpu, d);
    let data = cache.get(DatasetKind::Cifar100).await.unwrap();
    assert_eq!(data.len(), 150);
    assert_eq!(listing(tmp.path()), [C100]);
    let loaded = sweep_data::load_train_set(DatasetKind::Cifar100, tmp.path()).unwrap();
    assert_eq!(loaded, set);
    assert!(
        loaded.labels.iter().any(|&l| l >= 10),
        "fine labels, not coarse"
    );
}

#[tokio::test]
async fn cifar10_binary_archive_is_downloaded_and_loaded_by_the_real_reader() {
    let (files, set) = cifar_files(4);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let d = downloads(DatasetKind::Cifar10, &files, &server);

    let cache = DataCache::new(tmp.path().to_owned(), Device::Cpu, d.clone());
    let data = cache.get(DatasetKind::Cifar10).await.unwrap();
    assert_eq!(data.len(), 20);
    assert_eq!(server.requests(), [format!("/mirror/{CIFAR}")]);
    assert_eq!(listing(tmp.path()), [CIFAR]);
    let loaded = sweep_data::load_train_set(DatasetKind::Cifar10, tmp.path()).unwrap();
    assert_eq!(loaded, set);
}

#[tokio::test]
async fn a_bad_checksum_is_a_clear_error_and_leaves_no_file() {
    let (files, _) = cifar_files(2);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let mut d = downloads(DatasetKind::Cifar10, &files, &server);
    let expected = "0123456789abcdef0123456789abcdef";
    d.catalog.insert(
        DatasetKind::Cifar10,
        vec![Source {
            md5: expected.to_owned(),
            ..d.catalog.sources(DatasetKind::Cifar10)[0].clone()
        }],
    );

    let cache = DataCache::new(tmp.path().to_owned(), Device::Cpu, d);
    let err = cache.get(DatasetKind::Cifar10).await.err().unwrap();
    let msg = err.to_string();
    let url = format!("{}/mirror/{CIFAR}", server.url());
    let actual = md5_hex(&files[0].1);
    assert!(
        matches!(
            &*err,
            LoadError::Download {
                source: DownloadError::Checksum { .. },
                ..
            }
        ),
        "{msg}"
    );
    for part in [
        "cifar10 training set not found; looked for ",
        "cifar-10-batches-bin",
        "; downloading it failed: ",
        &url,
        "checksum mismatch",
        &format!("expected MD5 {expected}"),
        &format!("got {actual}"),
        "the file was deleted",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[tokio::test]
async fn http_404_names_the_url_and_status_and_keeps_nothing() {
    // The images exist, the labels do not: the verified images must not be kept alone.
    let (files, _) = fashion_files(30);
    let server = serve(&files[..1]);
    let tmp = tempfile::tempdir().unwrap();
    let d = downloads(DatasetKind::FashionMnist, &files, &server);

    let err = find_or_download(DatasetKind::FashionMnist, tmp.path(), &d).unwrap_err();
    let msg = err.to_string();
    let url = format!("{}/mirror/{LABELS}", server.url());
    assert!(
        msg.contains(&format!("GET {url}: HTTP 404 Not Found")),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 2);
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[test]
fn offline_makes_no_request_and_says_what_to_put_where() {
    let (files, _) = fashion_files(30);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let mut d = downloads(DatasetKind::FashionMnist, &files, &server);
    d.offline = true;

    let err = find_or_download(DatasetKind::FashionMnist, tmp.path(), &d).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LoadError::Offline { .. }), "{msg}");
    for part in [
        "fashion-mnist training set not found",
        "downloads are disabled (--offline)",
        &format!("put {IMAGES} ("),
        &format!("/mirror/{LABELS})"),
        &format!("in {}", tmp.path().display()),
        "run without --offline",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    assert_eq!(server.requests(), Vec::<String>::new());
}

#[test]
fn a_truncated_body_is_an_error_and_leaves_no_file() {
    let (files, _) = cifar_files(2);
    let bytes = &files[0].1;
    let routes = HashMap::from([(
        format!("/mirror/{CIFAR}"),
        Reply::Truncated {
            body: bytes[..bytes.len() / 2].to_vec(),
            announced: bytes.len(),
        },
    )]);
    let server = TestServer::start(routes);
    let tmp = tempfile::tempdir().unwrap();
    let d = downloads(DatasetKind::Cifar10, &files, &server);

    let err = find_or_download(DatasetKind::Cifar10, tmp.path(), &d).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            LoadError::Download {
                source: DownloadError::Transfer { .. },
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains(&format!("/mirror/{CIFAR}")), "{msg}");
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let (files, _) = cifar_files(2);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let mut d = downloads(DatasetKind::Cifar10, &files, &server);
    d.max_bytes = 1000;

    let err = find_or_download(DatasetKind::Cifar10, tmp.path(), &d).unwrap_err();
    assert!(
        err.to_string()
            .contains("larger than the limit of 1000 bytes"),
        "{err}"
    );
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[tokio::test]
async fn concurrent_slots_download_once() {
    let (files, _) = fashion_files(60);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let d = downloads(DatasetKind::FashionMnist, &files, &server);
    let cache = DataCache::new(tmp.path().to_owned(), Device::Cpu, d);

    let (a, b) = tokio::join!(
        cache.get(DatasetKind::FashionMnist),
        cache.get(DatasetKind::FashionMnist)
    );
    assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn an_unwritable_data_folder_falls_back_and_the_fallback_is_searched_next_time() {
    let (files, set) = fashion_files(30);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    // A folder below a regular file can never be created, even by root.
    std::fs::write(tmp.path().join("plain-file"), b"x").unwrap();
    let data_dir = tmp.path().join("plain-file").join("data");
    let fallback = tmp.path().join("cache");
    let mut d = downloads(DatasetKind::FashionMnist, &files, &server);
    d.fallback_dir = Some(fallback.clone());

    assert_eq!(
        find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap(),
        set
    );
    assert_eq!(listing(&fallback), [IMAGES, LABELS]);
    assert_eq!(server.requests().len(), 2);
    // Next time, even offline, the earlier download is found.
    d.offline = true;
    assert_eq!(
        find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap(),
        set
    );
    assert_eq!(server.requests().len(), 2);

    // Without a fallback: online, the error names the folder; offline, it says what to put where.
    d.fallback_dir = None;
    let err = find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap_err();
    assert!(matches!(err, LoadError::Offline { .. }), "{err}");
    d.offline = false;
    let err = find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "; downloading it failed: cannot write the download into {}: ",
            data_dir.display()
        )),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_writable_data_folder_never_uses_the_fallback() {
    let (files, _) = fashion_files(30);
    let server = serve(&files);
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let fallback = tmp.path().join("cache");
    fixtures::write_fashion_mnist(&fallback, 12, 3).unwrap();
    let mut d = downloads(DatasetKind::FashionMnist, &files, &server);
    d.fallback_dir = Some(fallback.clone());

    // Offline: the fallback's copy is not picked up behind the user's back.
    d.offline = true;
    let err = find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap_err();
    assert!(matches!(err, LoadError::Offline { .. }), "{err}");
    // Online: the download goes into the data folder.
    d.offline = false;
    let set = find_or_download(DatasetKind::FashionMnist, &data_dir, &d).unwrap();
    assert_eq!(set.len(), 30);
    assert_eq!(listing(&data_dir), [IMAGES, LABELS]);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn an_unreachable_server_is_an_error_naming_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (files, _) = cifar_files(1);
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(&[]);
    let mut d = downloads(DatasetKind::Cifar10, &files, &server);
    d.mirror = Some(format!("http://127.0.0.1:{port}"));

    let err = fetch(DatasetKind::Cifar10, tmp.path(), &d).unwrap_err();
    assert!(matches!(err, DownloadError::Request { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("GET http://127.0.0.1:{port}/{CIFAR} failed: ")),
        "{err}"
    );
}

#[test]
fn mirror_urls_and_the_official_catalog() {
    let s = Source {
        file: CIFAR.to_owned(),
        url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz".to_owned(),
        md5: "c32a1d4ab5d03f1284b67883e8d87530".to_owned(),
    };
    assert_eq!(s.url_with(None), s.url);
    for mirror in ["http://m.example/data", "http://m.example/data/"] {
        assert_eq!(
            s.url_with(Some(mirror)),
            "http://m.example/data/cifar-10-binary.tar.gz"
        );
    }

    let official = Catalog::official();
    assert_eq!(official.sources(DatasetKind::Cifar10), [s]);
    let fashion = official.sources(DatasetKind::FashionMnist);
    assert_eq!(
        fashion.iter().map(|s| s.file.as_str()).collect::<Vec<_>>(),
        [IMAGES, LABELS]
    );
    for s in fashion {
        assert!(s.url.starts_with(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
        ));
        assert!(s.url.ends_with(&s.file));
    }
    for kind in DatasetKind::ALL {
        for s in official.sources(kind) {
            assert_eq!(s.md5.len(), 32);
            assert!(
                s.md5
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
    assert_eq!(
        fetch(
            DatasetKind::Cifar10,
            Path::new("unused"),
            &Downloads {
                catalog: Catalog::default(),
                ..Downloads::official()
            }
        )
        .unwrap_err()
        .to_string(),
        "no download source is known for cifar10"
    );
    assert_eq!(HttpStatus(404).to_string(), "404 Not Found");
    assert_eq!(HttpStatus(599).to_string(), "599");
}
