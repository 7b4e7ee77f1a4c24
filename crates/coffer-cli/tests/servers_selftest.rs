//! The storage API servers of `common::servers` start, answer the requests the storage
//! clients make, and stop with their handles. Raw HTTP only: no coffer code involved.

mod common;

use std::fs;
use std::net::TcpStream;

use common::servers::*;

const DATA: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn stops_when_dropped(addr: std::net::SocketAddr) {
    // Killed and waited for in Drop: the port is closed at once.
    assert!(
        TcpStream::connect(addr).is_err(),
        "server on {addr} still answers after drop"
    );
}

#[test]
fn s3_bucket_put_ranged_get_list_delete() {
    let s3 = S3Server::start();
    assert_eq!(s3.endpoint, format!("http://{}", s3.addr));
    s3.create_bucket("coffer-test");

    // A plain S3 PUT (moto checks no signature, only that there is an Authorization).
    let resp = s3.request(
        "PUT",
        "/coffer-test/backups/a%20b.bin",
        &[("Content-Type", "application/octet-stream")],
        DATA,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.header("etag").is_some());

    let resp = s3.request(
        "GET",
        "/coffer-test/backups/a%20b.bin",
        &[("Range", "bytes=10-15")],
        b"",
    );
    assert_eq!(resp.status, 206, "{}", resp.text());
    assert_eq!(resp.body, &DATA[10..16]);
    assert_eq!(resp.header("content-range"), Some("bytes 10-15/36"));

    // Helpers: the same object through the back door, and planting one.
    assert_eq!(
        s3.get_object("coffer-test", "backups/a b.bin").as_deref(),
        Some(DATA)
    );
    s3.put_object("coffer-test", "backups/other", b"x");
    assert_eq!(
        s3.list_keys("coffer-test", "backups/"),
        ["backups/a b.bin", "backups/other"]
    );

    // Listing with a delimiter groups the "directories".
    let resp = s3.request(
        "GET",
        "/coffer-test?list-type=2&delimiter=%2F&prefix=",
        &[],
        b"",
    );
    assert_eq!(resp.status, 200);
    let text = resp.text();
    assert!(
        text.contains("<CommonPrefixes><Prefix>backups/</Prefix></CommonPrefixes>"),
        "{text}"
    );
    assert!(!text.contains("<Key>"), "{text}");

    s3.delete_object("coffer-test", "backups/other");
    assert_eq!(s3.get_object("coffer-test", "backups/other"), None);

    let addr = s3.addr;
    drop(s3);
    stops_when_dropped(addr);
}

#[test]
fn s3_anonymous_requests_on_existing_objects_are_refused() {
    // Why the helpers send a dummy Authorization header: moto answers 403 to unsigned
    // requests for objects that exist (their ACL is private).
    let s3 = S3Server::start();
    s3.create_bucket("anonymous");
    s3.put_object("anonymous", "k", b"x");
    let resp = http(s3.addr, "GET", "/anonymous/k", &[], b"");
    assert_eq!(resp.status, 403);
}

#[test]
fn s3_multipart_upload() {
    let s3 = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "4")]);
    s3.create_bucket("multipart");
    let resp = s3.request("POST", "/multipart/big?uploads", &[], b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let upload_id = xml_values(&resp.text(), "UploadId").remove(0);
    let mut etags = Vec::new();
    for (n, part) in [&DATA[..20], &DATA[20..]].iter().enumerate() {
        let path = format!("/multipart/big?partNumber={}&uploadId={upload_id}", n + 1);
        let resp = s3.request("PUT", &path, &[], part);
        assert_eq!(resp.status, 200, "{}", resp.text());
        etags.push(resp.header("etag").unwrap().to_string());
    }
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etags[0], etags[1]
    );
    let path = format!("/multipart/big?uploadId={upload_id}");
    let resp = s3.request("POST", &path, &[], body.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(s3.get_object("multipart", "big").as_deref(), Some(DATA));
}

#[test]
fn webdav_put_propfind_move_get_with_basic_auth() {
    let dav = WebDavServer::start();
    assert_eq!(dav.username.as_deref(), Some("coffer"));
    assert!(dav.password.as_ref().is_some_and(|p| p.len() >= 16));

    // Without the credentials: refused.
    let resp = http(dav.addr, "GET", "/", &[], b"");
    assert_eq!(resp.status, 401);

    // MKCOL one level at a time (a missing parent is a 409), then PUT.
    assert_eq!(dav.request("MKCOL", "/dir/sub/", &[], b"").status, 409);
    assert_eq!(dav.request("MKCOL", "/dir/", &[], b"").status, 201);
    assert_eq!(dav.request("MKCOL", "/dir/", &[], b"").status, 405);
    let resp = dav.request("PUT", "/dir/file%20one.bin", &[], DATA);
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(fs::read(dav.root.join("dir/file one.bin")).unwrap(), DATA);

    let resp = dav.request("PROPFIND", "/dir/", &[("Depth", "1")], b"");
    assert_eq!(resp.status, 207, "{}", resp.text());
    let text = resp.text();
    assert!(text.contains("<ns0:href>/dir/</ns0:href>"), "{text}");
    assert!(
        text.contains("<ns0:href>/dir/file%20one.bin</ns0:href>"),
        "{text}"
    );
    assert!(
        text.contains("<ns0:getcontentlength>36</ns0:getcontentlength>"),
        "{text}"
    );

    // A missing path is a 404 (OpenDAL's stat and its create-parents loop rely on it).
    let resp = dav.request("PROPFIND", "/nothing", &[("Depth", "0")], b"");
    assert_eq!(resp.status, 404);

    // MOVE onto an existing file with Overwrite: T replaces it (204).
    assert_eq!(dav.request("PUT", "/dir/final", &[], b"old").status, 201);
    let dest = format!("{}/dir/final", dav.endpoint);
    let headers = [("Destination", dest.as_str()), ("Overwrite", "T")];
    let resp = dav.request("MOVE", "/dir/file%20one.bin", &headers, b"");
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(!dav.root.join("dir/file one.bin").exists());

    let resp = dav.request("GET", "/dir/final", &[("Range", "bytes=30-")], b"");
    assert_eq!(resp.status, 206);
    assert_eq!(resp.body, &DATA[30..]);
    assert_eq!(dav.request("GET", "/dir/final", &[], b"").body, DATA);

    // COPY and DELETE.
    let dest = format!("{}/copy", dav.endpoint);
    let headers = [("Destination", dest.as_str()), ("Overwrite", "T")];
    assert_eq!(dav.request("COPY", "/dir/final", &headers, b"").status, 201);
    assert_eq!(dav.request("DELETE", "/dir/", &[], b"").status, 204);
    assert!(!dav.root.join("dir").exists());
    assert_eq!(fs::read(dav.root.join("copy")).unwrap(), DATA);

    let (addr, root) = (dav.addr, dav.root.clone());
    drop(dav);
    stops_when_dropped(addr);
    assert!(!root.exists(), "the served directory goes with the handle");
}

#[test]
fn webdav_anonymous() {
    let dav = WebDavServer::start_anonymous();
    assert_eq!(dav.username, None);
    assert_eq!(dav.authorization(), None);
    assert_eq!(http(dav.addr, "PUT", "/f", &[], b"hi").status, 201);
    assert_eq!(http(dav.addr, "GET", "/f", &[], b"").body, b"hi");
}

#[test]
fn gcs_bucket_upload_ranged_download_list() {
    let gcs = GcsEmulator::start();
    gcs.create_bucket("coffer-test");

    let resp = http(
        gcs.addr,
        "POST",
        "/upload/storage/v1/b/coffer-test/o?uploadType=media&name=backups%2Fx",
        &[("Content-Type", "application/octet-stream")],
        DATA,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let meta: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(meta["size"], "36");

    let path = "/storage/v1/b/coffer-test/o/backups%2Fx?alt=media";
    assert_eq!(http(gcs.addr, "GET", path, &[], b"").body, DATA);
    let resp = http(gcs.addr, "GET", path, &[("Range", "bytes=5-9")], b"");
    assert_eq!(resp.status, 206);
    assert_eq!(resp.body, &DATA[5..10]);

    gcs.put_object("coffer-test", "backups/y", b"y");
    gcs.put_object("coffer-test", "other", b"z");
    assert_eq!(
        gcs.list_names("coffer-test", "backups/"),
        ["backups/x", "backups/y"]
    );
    assert_eq!(
        gcs.get_object("coffer-test", "backups/y").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(gcs.get_object("coffer-test", "missing"), None);

    let addr = gcs.addr;
    drop(gcs);
    stops_when_dropped(addr);
}

#[test]
fn servers_start_in_parallel_on_distinct_ports() {
    let a = S3Server::start();
    let b = S3Server::start();
    let c = WebDavServer::start();
    let d = GcsEmulator::start();
    let e = AzuriteServer::start();
    let mut ports = vec![
        a.addr.port(),
        b.addr.port(),
        c.addr.port(),
        d.addr.port(),
        e.addr.port(),
    ];
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 5);
    // Each has its own state.
    a.create_bucket("only-in-a");
    assert_eq!(b.request("GET", "/only-in-a", &[], b"").status, 404);
    eprintln!(
        "startup: moto {:?}, moto {:?}, wsgidav {:?}, gcs {:?}, azurite {:?}",
        a.startup, b.startup, c.startup, d.startup, e.startup
    );
}

#[test]
fn gcs_compat_fixes_what_opendal_needs() {
    let gcs = GcsEmulator::start();
    gcs.create_bucket("compat");
    let upload = "/upload/storage/v1/b/compat/o?uploadType=media&name=";

    // No Content-Type (as OpenDAL sends): contentType is a string, not null.
    let resp = http(gcs.addr, "POST", &format!("{upload}plain"), &[], DATA);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let meta: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(meta["contentType"], "application/octet-stream");

    // An empty object.
    let resp = http(gcs.addr, "POST", &format!("{upload}empty"), &[], b"");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(gcs.get_object("compat", "empty").as_deref(), Some(&b""[..]));

    // Suffix and unsatisfiable ranges.
    let media = "/storage/v1/b/compat/o/plain?alt=media";
    let resp = http(gcs.addr, "GET", media, &[("Range", "bytes=-4")], b"");
    assert_eq!((resp.status, &resp.body[..]), (206, &DATA[32..]));
    let resp = http(gcs.addr, "GET", media, &[("Range", "bytes=36-40")], b"");
    assert_eq!(resp.status, 416);

    // Left unfixed: the XML API's multipart upload (the tests use `upload=segments`).
    let resp = http(gcs.addr, "POST", "/compat/dir%2Fbig?uploads", &[], b"");
    assert_eq!(resp.status, 501);
}

#[test]
fn gcs_unpatched_emulator_answers_null_content_type() {
    // What GCS_COMPAT is for: the released emulator's object resource breaks OpenDAL.
    let gcs = GcsEmulator::start_unpatched();
    gcs.create_bucket("bare");
    let path = "/upload/storage/v1/b/bare/o?uploadType=media&name=x";
    let resp = http(gcs.addr, "POST", path, &[], DATA);
    let meta: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert!(meta["contentType"].is_null(), "{meta}");
    let resp = http(gcs.addr, "POST", "/bare/x?uploads", &[], b"");
    assert_eq!(resp.status, 501);
}

#[test]
fn azurite_container_put_ranged_get_list_delete() {
    let az = AzuriteServer::start();
    assert_eq!(az.endpoint, format!("http://{}/devstoreaccount1", az.addr));
    assert_eq!(az.account_name, "devstoreaccount1");
    assert_eq!(az.account_key.len(), 88);
    az.create_container("coffer-test");

    // A plain Put Blob (a block blob in one request), through the SAS.
    let resp = az.request(
        "PUT",
        "/coffer-test/backups/a%20b.bin",
        &[("x-ms-blob-type", "BlockBlob")],
        DATA,
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert!(resp.header("etag").is_some());

    let resp = az.request(
        "GET",
        "/coffer-test/backups/a%20b.bin",
        &[("Range", "bytes=10-15")],
        b"",
    );
    assert_eq!(resp.status, 206, "{}", resp.text());
    assert_eq!(resp.body, &DATA[10..16]);
    assert_eq!(resp.header("content-range"), Some("bytes 10-15/36"));

    // Helpers: the same blob through the back door, and planting one.
    assert_eq!(
        az.get_blob("coffer-test", "backups/a b.bin").as_deref(),
        Some(DATA)
    );
    az.put_blob("coffer-test", "backups/other", b"x");
    az.put_blob("coffer-test", "elsewhere", b"y");
    assert_eq!(
        az.list_blobs("coffer-test", "backups/"),
        ["backups/a b.bin", "backups/other"]
    );
    assert_eq!(az.list_blobs("coffer-test", "").len(), 3);
    assert_eq!(az.get_blob("coffer-test", "missing"), None);

    // Paged listings: list_blobs follows NextMarker the same way.
    let list = "/coffer-test?restype=container&comp=list&maxresults=1";
    let resp = az.request("GET", list, &[], b"");
    let text = resp.text();
    assert_eq!(xml_values(&text, "Name"), ["backups/a b.bin"]);
    let marker = xml_values(&text, "NextMarker").pop().unwrap_or_default();
    assert!(!marker.is_empty(), "{text}");
    let next = format!("{list}&marker={}", pct(&marker, false));
    let resp = az.request("GET", &next, &[], b"");
    assert_eq!(xml_values(&resp.text(), "Name"), ["backups/other"]);

    // Listing with a delimiter groups the "directories".
    let resp = az.request(
        "GET",
        "/coffer-test?restype=container&comp=list&delimiter=%2F&prefix=",
        &[],
        b"",
    );
    assert_eq!(resp.status, 200);
    let text = resp.text();
    assert!(
        text.contains("<BlobPrefix><Name>backups/</Name></BlobPrefix>"),
        "{text}"
    );
    assert!(text.contains("<Blob><Name>elsewhere</Name>"), "{text}");
    assert!(!text.contains("a b.bin"), "{text}");

    az.delete_blob("coffer-test", "backups/other");
    assert_eq!(az.get_blob("coffer-test", "backups/other"), None);
    az.delete_blob("coffer-test", "backups/other");

    let addr = az.addr;
    drop(az);
    stops_when_dropped(addr);
}

#[test]
fn azurite_block_blob_from_put_block_and_put_block_list() {
    // What OpenDAL's azblob writer does for a multipart write.
    let az = AzuriteServer::start();
    az.create_container("blocks");
    // Block ids: base64, all of the same length ("block-1", "block-2").
    let ids = ["YmxvY2stMQ==", "YmxvY2stMg=="];
    for (id, part) in ids.iter().zip([&DATA[..20], &DATA[20..]]) {
        let path = format!("/blocks/big?comp=block&blockid={}", pct(id, false));
        let resp = az.request("PUT", &path, &[], part);
        assert_eq!(resp.status, 201, "{}", resp.text());
    }
    // Uncommitted blocks are neither readable nor listed.
    assert_eq!(az.get_blob("blocks", "big"), None);
    assert!(az.list_blobs("blocks", "").is_empty());

    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <BlockList><Latest>{}</Latest><Latest>{}</Latest></BlockList>",
        ids[0], ids[1]
    );
    let resp = az.request("PUT", "/blocks/big?comp=blocklist", &[], body.as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(az.get_blob("blocks", "big").as_deref(), Some(DATA));
    assert_eq!(az.list_blobs("blocks", ""), ["big"]);
}

#[test]
fn azurite_refuses_requests_without_a_valid_signature() {
    // Why the helpers send a SAS: Azurite checks signatures with the account key.
    let az = AzuriteServer::start();
    az.create_container("private");
    az.put_blob("private", "k", b"x");
    let blob = "/devstoreaccount1/private/k";
    let resp = http(az.addr, "GET", blob, &[], b"");
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(resp.header("x-ms-error-code"), Some("AuthorizationFailure"));

    // The same SAS with one permission less no longer matches its signature.
    let forged = az.sas_token.replace("sp=racwdl", "sp=racwd");
    let resp = http(az.addr, "GET", &format!("{blob}?{forged}"), &[], b"");
    assert_eq!(resp.status, 403, "{}", resp.text());

    let signed = format!("{blob}?{}", az.sas_token);
    let resp = http(az.addr, "GET", &signed, &[], b"");
    assert_eq!((resp.status, &resp.body[..]), (200, &b"x"[..]));
}
