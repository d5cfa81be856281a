use super::*;

fn host(name: &str) -> HostName {
    name.parse().unwrap()
}

fn request(key: &nkeys::KeyPair, host_name: &str, now: u64) -> CallRequest {
    CallRequest {
        id: "req-1".to_owned(),
        host: host(host_name),
        tool: "run_command".to_owned(),
        arguments: Some(
            serde_json::json!({"command": "uptime"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        principal: "alice".to_owned(),
        role: "operator".to_owned(),
        gateway: key.public_key(),
        issued_at_ms: now,
        expires_at_ms: now + 30_000,
        deadline_ms: None,
        nonce: new_nonce(),
        progress: false,
    }
}

fn signed(key: &nkeys::KeyPair, request: &CallRequest) -> (Vec<u8>, Signature) {
    let payload = serde_json::to_vec(request).unwrap();
    let signature = sign(SignedKind::Call, &payload, key).unwrap();
    (payload, signature)
}

const NOW: u64 = 1_800_000_000_000;

#[test]
fn host_names_are_one_subject_token() {
    for good in ["web-1", "db_2", "A", &"x".repeat(63)] {
        assert_eq!(good.parse::<HostName>().unwrap().as_str(), good);
    }
    for bad in ["", "a.b", "a b", "a*", "a>", "ä", &"x".repeat(64)] {
        assert!(bad.parse::<HostName>().is_err(), "{bad:?}");
    }
    assert_eq!(
        HostName::from_hostname("web-1.example.org").unwrap(),
        host("web-1")
    );
    assert!(HostName::from_hostname(".example").is_err());
}

#[test]
fn subjects_follow_the_contract() {
    let web = host("web-1");
    assert_eq!(call_subject(&web), "hostmcp.host.web-1.call");
    assert_eq!(cancel_subject(&web), "hostmcp.host.web-1.cancel");
    assert_eq!(host_wildcard(&web), "hostmcp.host.web-1.>");
    assert_eq!(presence_subject(&web), "hostmcp.presence.web-1");
}

#[test]
fn public_keys_parse_as_nkeys_or_base64_of_the_same_bytes() {
    let key = nkeys::KeyPair::new_account();
    let nkey: PublicKey = key.public_key().parse().unwrap();
    let (_, raw) = nkeys::from_public_key(&key.public_key()).unwrap();
    let b64: PublicKey = base64::engine::general_purpose::STANDARD
        .encode(raw)
        .parse()
        .unwrap();
    assert_eq!(nkey, b64);
    assert!("ANOTAKEY".parse::<PublicKey>().is_err());
    // 31 bytes is not a key.
    let short = base64::engine::general_purpose::STANDARD.encode([0u8; 31]);
    assert!(short.parse::<PublicKey>().is_err());
}

#[test]
fn a_signed_request_for_this_host_opens() {
    let key = nkeys::KeyPair::new_account();
    let call = request(&key, "web-1", NOW);
    let (payload, signature) = signed(&key, &call);
    let (opened, signer): (CallRequest, _) =
        open(&payload, Some(&signature), &host("web-1"), NOW + 1000).unwrap();
    assert_eq!(opened, call);
    assert_eq!(signer, key.public_key().parse().unwrap());
}

#[test]
fn an_unsigned_request_is_refused() {
    let key = nkeys::KeyPair::new_account();
    let (payload, _) = signed(&key, &request(&key, "web-1", NOW));
    let refusal = open::<CallRequest>(&payload, None, &host("web-1"), NOW).unwrap_err();
    assert_eq!(refusal.kind, ErrorKind::Unsigned);
}

#[test]
fn a_flipped_bit_anywhere_in_the_payload_breaks_the_signature() {
    let key = nkeys::KeyPair::new_account();
    let (payload, signature) = signed(&key, &request(&key, "web-1", NOW));
    for index in [0, payload.len() / 2, payload.len() - 1] {
        let mut changed = payload.clone();
        changed[index] ^= 0x01;
        let refusal =
            open::<CallRequest>(&changed, Some(&signature), &host("web-1"), NOW).unwrap_err();
        assert_eq!(refusal.kind, ErrorKind::BadSignature, "byte {index}");
    }
    // The twin: unchanged, it opens.
    assert!(open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW).is_ok());
}

#[test]
fn a_signature_by_another_key_than_the_signer_header_names_is_refused() {
    let gateway = nkeys::KeyPair::new_account();
    let forger = nkeys::KeyPair::new_account();
    let call = request(&gateway, "web-1", NOW);
    let payload = serde_json::to_vec(&call).unwrap();
    let mut signature = sign(SignedKind::Call, &payload, &forger).unwrap();
    signature.signer = gateway.public_key();
    let refusal = open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW).unwrap_err();
    assert_eq!(refusal.kind, ErrorKind::BadSignature);
}

#[test]
fn a_request_naming_another_gateway_than_its_signer_is_refused() {
    let gateway = nkeys::KeyPair::new_account();
    let other = nkeys::KeyPair::new_account();
    // Signed by `other`, claiming to come from `gateway` inside the payload.
    let call = request(&gateway, "web-1", NOW);
    let payload = serde_json::to_vec(&call).unwrap();
    let signature = sign(SignedKind::Call, &payload, &other).unwrap();
    let refusal = open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW).unwrap_err();
    assert_eq!(refusal.kind, ErrorKind::BadSignature);
}

#[test]
fn a_call_signature_does_not_verify_a_cancel() {
    let key = nkeys::KeyPair::new_account();
    let (payload, signature) = signed(&key, &request(&key, "web-1", NOW));
    assert_eq!(
        verify(SignedKind::Cancel, &payload, Some(&signature)),
        Err(SignatureError::BadSignature)
    );
    assert!(verify(SignedKind::Call, &payload, Some(&signature)).is_ok());
}

#[test]
fn a_request_signed_for_host_a_is_refused_by_host_b() {
    let key = nkeys::KeyPair::new_account();
    let (payload, signature) = signed(&key, &request(&key, "web-1", NOW));
    let refusal = open::<CallRequest>(&payload, Some(&signature), &host("web-2"), NOW).unwrap_err();
    assert_eq!(refusal.kind, ErrorKind::WrongHost);
    assert!(open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW).is_ok());
}

#[test]
fn requests_outside_their_window_are_expired() {
    let key = nkeys::KeyPair::new_account();
    let call = request(&key, "web-1", NOW);
    let (payload, signature) = signed(&key, &call);
    let open_at = |now| open::<CallRequest>(&payload, Some(&signature), &host("web-1"), now);
    // Within the window and its skew allowance: fine.
    assert!(open_at(call.expires_at_ms + CLOCK_SKEW_MS).is_ok());
    assert!(open_at(NOW - CLOCK_SKEW_MS).is_ok());
    // Past it, or issued too far in the future.
    assert_eq!(
        open_at(call.expires_at_ms + CLOCK_SKEW_MS + 1)
            .unwrap_err()
            .kind,
        ErrorKind::Expired
    );
    assert_eq!(
        open_at(NOW - CLOCK_SKEW_MS - 1).unwrap_err().kind,
        ErrorKind::Expired
    );
    // A window longer than allowed is refused even when now is inside it.
    let mut long = request(&key, "web-1", NOW);
    long.expires_at_ms = NOW + MAX_VALIDITY_MS + 1;
    let (payload, signature) = signed(&key, &long);
    assert_eq!(
        open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW)
            .unwrap_err()
            .kind,
        ErrorKind::Expired
    );
}

#[test]
fn short_nonces_and_unknown_fields_are_malformed() {
    let key = nkeys::KeyPair::new_account();
    let mut call = request(&key, "web-1", NOW);
    call.nonce = "short".to_owned();
    let (payload, signature) = signed(&key, &call);
    assert_eq!(
        open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW)
            .unwrap_err()
            .kind,
        ErrorKind::Malformed
    );
    let mut value = serde_json::to_value(request(&key, "web-1", NOW)).unwrap();
    value["extra"] = serde_json::json!(1);
    let payload = serde_json::to_vec(&value).unwrap();
    let signature = sign(SignedKind::Call, &payload, &key).unwrap();
    assert_eq!(
        open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW)
            .unwrap_err()
            .kind,
        ErrorKind::Malformed
    );
}

#[test]
fn signatures_travel_in_headers() {
    let key = nkeys::KeyPair::new_account();
    let signature = sign(SignedKind::Call, b"{}", &key).unwrap();
    let mut headers = async_nats::HeaderMap::new();
    signature.to_headers(&mut headers);
    assert_eq!(Signature::from_headers(Some(&headers)), Some(signature));
    assert_eq!(
        Signature::from_headers(Some(&async_nats::HeaderMap::new())),
        None
    );
}

fn big_reply(bytes: usize) -> FinalReply {
    FinalReply {
        id: "req-1".to_owned(),
        host: host("web-1"),
        outcome: Outcome::Ok {
            result: serde_json::json!({"content": [{"type": "text", "text": "x".repeat(bytes)}]}),
        },
    }
}

fn through_the_wire(frames: &[ReplyFrame]) -> Vec<(u64, ReplyFrame)> {
    frames
        .iter()
        .enumerate()
        .map(|(seq, frame)| {
            let (headers, payload) = frame.to_message(seq as u64);
            ReplyFrame::from_message(Some(&headers), payload).unwrap()
        })
        .collect()
}

#[test]
fn a_large_reply_is_split_under_max_payload_and_reassembled_whole() {
    let reply = big_reply(300_000);
    let frames = split_final(&reply, 64 * 1024);
    assert!(frames.len() >= 5, "{}", frames.len());
    for frame in &frames {
        let (_, payload) = frame.to_message(0);
        assert!(payload.len() <= 64 * 1024 - REPLY_OVERHEAD);
    }
    let mut reassembly = Reassembly::new();
    reassembly
        .push(
            0,
            ReplyFrame::Progress(Progress {
                progress: 1.0,
                total: None,
                message: Some("running".to_owned()),
            }),
        )
        .unwrap();
    let mut done = None;
    for (seq, frame) in through_the_wire(&frames) {
        if let Assembled::Done(reply) = reassembly.push(seq + 1, frame).unwrap() {
            done = Some(reply);
        }
    }
    assert_eq!(done, Some(reply));
}

#[test]
fn a_small_reply_is_one_final_frame() {
    let frames = split_final(&big_reply(10), 1024 * 1024);
    assert!(matches!(
        frames.as_slice(),
        [ReplyFrame::Final {
            part: 0,
            parts: 1,
            ..
        }]
    ));
}

#[test]
fn a_lost_part_is_an_error_not_a_shorter_result() {
    let frames = through_the_wire(&split_final(&big_reply(10_000), 4096));
    assert!(frames.len() >= 3);
    // Part 1 lost: part 2 arrives with seq 2 where seq 1 was due.
    let mut reassembly = Reassembly::new();
    reassembly.push(frames[0].0, frames[0].1.clone()).unwrap();
    assert!(matches!(
        reassembly.push(frames[2].0, frames[2].1.clone()),
        Err(FrameError::OutOfOrder {
            expected: 1,
            got: 2
        })
    ));
    // Renumbered to hide the gap: the part number still tells.
    let mut reassembly = Reassembly::new();
    reassembly.push(0, frames[0].1.clone()).unwrap();
    assert!(matches!(
        reassembly.push(1, frames[2].1.clone()),
        Err(FrameError::PartOutOfOrder {
            expected: 1,
            got: 2
        })
    ));
}

#[test]
fn a_final_part_whose_length_disagrees_is_refused() {
    let mut frames = split_final(&big_reply(10_000), 4096);
    if let Some(ReplyFrame::Final { length, .. }) = frames.last_mut() {
        *length -= 1;
    }
    let mut reassembly = Reassembly::new();
    let mut last = Ok(Assembled::Pending);
    for (seq, frame) in frames.into_iter().enumerate() {
        last = reassembly.push(seq as u64, frame);
    }
    assert!(
        matches!(last, Err(FrameError::Incomplete { .. })),
        "{last:?}"
    );
}

#[test]
fn a_reply_without_headers_is_not_a_frame() {
    assert!(ReplyFrame::from_message(None, bytes::Bytes::from_static(b"{}")).is_err());
}

#[test]
fn outcomes_have_a_stable_json_shape() {
    let refused = FinalReply::refused(
        "r",
        &host("web-1"),
        &Refusal::new(ErrorKind::NotTrusted, "who?"),
    );
    assert_eq!(
        serde_json::to_value(&refused).unwrap(),
        serde_json::json!({"id": "r", "host": "web-1", "status": "error", "error": "not_trusted", "message": "who?"})
    );
    let ok = big_reply(1);
    let value = serde_json::to_value(&ok).unwrap();
    assert_eq!(value["status"], "ok");
    assert_eq!(serde_json::from_value::<FinalReply>(value).unwrap(), ok);
}

#[test]
fn presence_round_trips() {
    let presence = Presence {
        host: host("web-1"),
        status: Status::Online,
        version: "0.1.0".to_owned(),
        labels: [("env".to_owned(), "prod".to_owned())].into(),
        seen_at_ms: NOW,
        started_at_ms: NOW - 5,
        interval_ms: 2000,
        facts: Some(Facts {
            arch: "x86_64".to_owned(),
            cpus: 2,
            ..Facts::default()
        }),
    };
    let json = serde_json::to_string(&presence).unwrap();
    assert!(json.contains(r#""status":"online""#), "{json}");
    assert_eq!(serde_json::from_str::<Presence>(&json).unwrap(), presence);
}

#[test]
fn a_sealed_cancel_opens_as_a_cancel_only() {
    let key = nkeys::KeyPair::new_account();
    let cancel = CancelRequest {
        id: "req-1".to_owned(),
        host: host("web-1"),
        gateway: key.public_key(),
        issued_at_ms: NOW,
        expires_at_ms: NOW + 1000,
        nonce: new_nonce(),
    };
    let (payload, signature) = seal(&cancel, &key).unwrap();
    let (opened, _): (CancelRequest, _) =
        open(&payload, Some(&signature), &host("web-1"), NOW).unwrap();
    assert_eq!(opened, cancel);
    assert_eq!(
        open::<CallRequest>(&payload, Some(&signature), &host("web-1"), NOW)
            .unwrap_err()
            .kind,
        ErrorKind::BadSignature
    );
}
