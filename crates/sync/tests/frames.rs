//! The frame decoders against hostile bytes: random input, mutated valid frames, truncations
//! and lying headers never panic and never allocate past the limits; valid frames round-trip.
//! And sessions refuse what they must: another protocol version, another profile, a peer
//! without a grant, a chunk with a wrong dimension or NaN (nothing stored).

use proptest::prelude::*;
use sqlite_vector::{Change, Metric, NewItem, Profile, Shard, SiteId};
use sqlite_vector_sync::proto::frame::{
    build_chunk, open_chunk, Chunk, Frame, Hello, RejectCode, WireProfile, HEADER_BYTES,
    MAX_FRAME_BYTES,
};
use sqlite_vector_sync::proto::{Config, Decoder, Grant, ProtoError, Session, ShardStore};

fn change(id: String, cl: i64, hlc: i64, vector: Option<Vec<f32>>, text: Option<String>) -> Change {
    Change {
        id,
        seq: 0,
        hlc,
        site_id: SiteId([7; 16]),
        causal_length: cl,
        vector,
        metadata: None,
        text,
    }
}

fn frames() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<i64>(), any::<i64>()).prop_map(|(last, head)| Frame::Done { last, head }),
        any::<i64>().prop_map(|to| Frame::Ack { to }),
        (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(digest, head, live)| Frame::Fin {
            digest,
            head,
            live
        }),
        ".{0,40}".prop_map(|message| Frame::Reject {
            code: RejectCode::Profile,
            message
        }),
        (
            "[a-z/]{0,10}",
            proptest::collection::vec("[a-z/]{1,10}", 0..4)
        )
            .prop_map(|(prefix, names)| Frame::List { prefix, names }),
        proptest::collection::vec(("[a-z/]{1,10}", 1u32..100), 0..4).prop_map(|v| Frame::Shards {
            shards: v
                .into_iter()
                .map(|(n, d)| (
                    n,
                    WireProfile {
                        dimension: d,
                        metric: Metric::L2,
                        embedding_model: None,
                        searchable_fields: vec![],
                    }
                ))
                .collect()
        }),
        (
            "[a-z/]{1,20}",
            1u32..2000,
            proptest::option::of("[a-z-]{0,12}"),
            proptest::collection::vec((any::<[u8; 16]>(), any::<i64>()), 0..5),
            any::<(bool, bool, i64, u64, u64, i64)>(),
        )
            .prop_map(
                |(
                    shard,
                    dimension,
                    model,
                    cursors,
                    (send, receive, head, digest, live, horizon),
                )| {
                    Frame::Hello(Hello {
                        version: 1,
                        send,
                        receive,
                        shard,
                        profile: WireProfile {
                            dimension,
                            metric: Metric::Dot,
                            embedding_model: model,
                            searchable_fields: vec!["title".into()],
                        },
                        site: SiteId([3; 16]),
                        head,
                        digest,
                        live,
                        horizon,
                        cursors: cursors.into_iter().map(|(s, v)| (SiteId(s), v)).collect(),
                    })
                }
            ),
        proptest::collection::vec(
            (
                "[a-z0-9]{1,8}",
                1i64..6,
                0i64..1 << 40,
                proptest::option::of(".{0,20}")
            ),
            0..6
        )
        .prop_map(|rows| {
            let changes: Vec<Change> = rows
                .into_iter()
                .map(|(id, cl, hlc, text)| {
                    let alive = cl % 2 == 1;
                    change(
                        id,
                        cl,
                        hlc,
                        alive.then(|| vec![1.5, -2.0, 0.25]),
                        text.filter(|_| alive),
                    )
                })
                .collect();
            let to = changes.len() as i64;
            Frame::Chunk(build_chunk(&changes, 0, to).unwrap())
        }),
    ]
}

/// Decodes `bytes` fed in two pieces; every error is typed, nothing panics.
fn decode_all(bytes: &[u8], cut: usize) -> Vec<Result<Frame, String>> {
    let mut d = Decoder::new();
    let cut = cut.min(bytes.len());
    let mut out = Vec::new();
    for piece in [&bytes[..cut], &bytes[cut..]] {
        d.push(piece);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    if let Frame::Chunk(c) = &f {
                        // The body decoder too, whatever it claims.
                        let _ = open_chunk(c, 3);
                    }
                    out.push(Ok(f))
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frames_round_trip(frame in frames(), cut in 0usize..200) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes).unwrap();
        let got = decode_all(&bytes, cut);
        prop_assert_eq!(got.len(), 1);
        let back = got[0].clone().unwrap();
        if let (Frame::Chunk(a), Frame::Chunk(b)) = (&frame, &back) {
            prop_assert_eq!(open_chunk(a, 3).unwrap(), open_chunk(b, 3).unwrap());
        }
        prop_assert_eq!(back, frame);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
        decode_all(&bytes, cut);
    }

    #[test]
    fn mutated_frames_never_panic(
        frame in frames(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        truncate in any::<Option<usize>>(),
    ) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes).unwrap();
        for (at, b) in flips {
            let i = at % bytes.len();
            bytes[i] ^= b | 1;
        }
        if let Some(t) = truncate {
            bytes.truncate(t % (bytes.len() + 1));
        }
        decode_all(&bytes, 7);
    }
}

#[test]
fn a_header_announcing_a_huge_frame_fails_before_buffering() {
    let mut d = Decoder::new();
    let mut bytes = vec![2u8];
    bytes.extend_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
    d.push(&bytes);
    assert!(matches!(d.next_frame(), Err(ProtoError::Oversize(_))));
    assert_eq!(d.buffered(), HEADER_BYTES);
}

#[test]
fn a_chunk_lying_about_its_size_or_count_is_refused() {
    let changes = vec![change("a".into(), 1, 5, Some(vec![1.0, 2.0, 3.0]), None)];
    let good = build_chunk(&changes, 0, 1).unwrap();
    assert_eq!(open_chunk(&good, 3).unwrap().len(), 1);
    // A count beyond what the body holds, a body of another dimension, a size it does not
    // decompress to: typed errors.
    let more = Chunk {
        count: 2,
        ..good.clone()
    };
    assert!(matches!(
        open_chunk(&more, 3),
        Err(ProtoError::Malformed(_))
    ));
    assert!(matches!(
        open_chunk(&good, 4),
        Err(ProtoError::Malformed(_))
    ));
    let packed = Chunk {
        compressed: true,
        raw_len: 1 << 20,
        body: vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0],
        ..good.clone()
    };
    assert!(matches!(
        open_chunk(&packed, 3),
        Err(ProtoError::Malformed(_))
    ));
    // A header claiming more than the frame carries.
    let mut bytes = Vec::new();
    Frame::Chunk(good).encode(&mut bytes).unwrap();
    bytes.truncate(bytes.len() - 1);
    let len = (bytes.len() - HEADER_BYTES) as u32;
    bytes[1..5].copy_from_slice(&len.to_le_bytes());
    let mut d = Decoder::new();
    d.push(&bytes);
    let refused = match d.next_frame() {
        Err(ProtoError::Malformed(_)) => true,
        Ok(Some(Frame::Chunk(c))) => matches!(open_chunk(&c, 3), Err(ProtoError::Malformed(_))),
        other => panic!("{other:?}"),
    };
    assert!(refused);
}

fn shard(dim: usize, metric: Metric) -> Shard {
    Shard::in_memory(&Profile::new(dim, metric)).unwrap()
}

/// Runs the responder side on `b` for `a`'s first frame.
#[allow(clippy::result_large_err)]
fn respond(a: &mut Session, b: &Shard, grant: Grant) -> Result<Session, (Session, ProtoError)> {
    let Some(Frame::Hello(h)) = a.poll_transmit() else {
        panic!("first frame is a hello")
    };
    match Session::respond(h, &ShardStore::bare(b), grant, Config::default()) {
        (s, Ok(())) => Ok(s),
        (s, Err(e)) => Err((s, e)),
    }
}

const ALL: Grant = Grant {
    pull: true,
    push: true,
};

#[test]
fn sessions_refuse_other_profiles_versions_and_ungranted_peers() {
    let (a, b) = (shard(3, Metric::Cosine), shard(4, Metric::Cosine));
    a.insert(NewItem::new(vec![1.0, 0.0, 0.0]).with_id("x"))
        .unwrap();
    // Another dimension: both values named, a reject queued, nothing sent.
    let mut s =
        Session::initiate("s", &ShardStore::bare(&a), true, true, Config::default()).unwrap();
    let (mut r, e) = respond(&mut s, &b, ALL).unwrap_err();
    assert!(
        e.to_string().contains("dimension 4 here, 3 at the peer"),
        "{e}"
    );
    assert!(matches!(
        r.poll_transmit(),
        Some(Frame::Reject {
            code: RejectCode::Profile,
            ..
        })
    ));
    assert!(r.poll_transmit().is_none());
    // Another metric.
    let c = shard(3, Metric::L2);
    let mut s =
        Session::initiate("s", &ShardStore::bare(&a), true, true, Config::default()).unwrap();
    let (_, e) = respond(&mut s, &c, ALL).unwrap_err();
    assert!(
        e.to_string().contains("metric l2 here, cosine at the peer"),
        "{e}"
    );
    // A peer without a grant to push, or to pull: refused before any change is read.
    let d = shard(3, Metric::Cosine);
    let mut s =
        Session::initiate("s", &ShardStore::bare(&a), true, false, Config::default()).unwrap();
    let (mut r, e) = respond(
        &mut s,
        &d,
        Grant {
            pull: true,
            push: false,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("may not push to"), "{e}");
    assert!(matches!(
        r.poll_transmit(),
        Some(Frame::Reject {
            code: RejectCode::Forbidden,
            ..
        })
    ));
    let mut s =
        Session::initiate("s", &ShardStore::bare(&d), false, true, Config::default()).unwrap();
    let (mut r, _) = respond(
        &mut s,
        &a,
        Grant {
            pull: false,
            push: true,
        },
    )
    .unwrap_err();
    let Some(Frame::Reject { .. }) = r.poll_transmit() else {
        panic!("a reject")
    };
    assert!(r.poll_transmit().is_none(), "no chunk after a reject");
    // Another protocol version.
    let mut s =
        Session::initiate("s", &ShardStore::bare(&a), true, true, Config::default()).unwrap();
    let Some(Frame::Hello(mut h)) = s.poll_transmit() else {
        panic!()
    };
    h.version = 99;
    let (_, r) = Session::respond(h, &ShardStore::bare(&d), ALL, Config::default());
    let e = r.unwrap_err();
    assert!(
        e.to_string()
            .contains("protocol version 1 here, 99 at the peer"),
        "{e}"
    );
    assert_eq!(d.len(), 0);
}

#[test]
fn a_chunk_with_a_bad_change_is_refused_and_stores_nothing() {
    let (a, b) = (shard(3, Metric::Cosine), shard(3, Metric::Cosine));
    a.insert(NewItem::new(vec![1.0, 0.0, 0.0]).with_id("x"))
        .unwrap();
    let mut s =
        Session::initiate("s", &ShardStore::bare(&a), true, false, Config::default()).unwrap();
    let mut r = respond(&mut s, &b, ALL).unwrap();
    let Some(Frame::Hello(h)) = r.poll_transmit() else {
        panic!()
    };
    s.handle(Frame::Hello(h), &ShardStore::bare(&a)).unwrap();
    let Some(Frame::Chunk(good)) = s.poll_transmit() else {
        panic!("a chunk")
    };
    // The same range, carrying a NaN vector and a valid item: nothing of it is stored.
    let bad = vec![
        change("ok".into(), 1, 5, Some(vec![0.0, 1.0, 0.0]), None),
        change("nan".into(), 1, 5, Some(vec![f32::NAN, 1.0, 0.0]), None),
    ];
    let forged = build_chunk(&bad, good.from, good.to).unwrap();
    let e = r
        .handle(Frame::Chunk(forged), &ShardStore::bare(&b))
        .unwrap_err();
    assert!(matches!(e, ProtoError::Store(_)), "{e}");
    assert_eq!(b.len(), 0);
    assert!(
        b.sync_state().unwrap().cursors.is_empty(),
        "no cursor moved"
    );
    assert!(matches!(
        r.poll_transmit(),
        Some(Frame::Reject {
            code: RejectCode::Storage,
            ..
        })
    ));
}
