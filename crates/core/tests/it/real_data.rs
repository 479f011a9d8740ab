//! Exact search on real data against exact ground truth: the sample shipped in the repository
//! always, and the full `../shared/data/debian-minilm` (25,000 × 384, 500 queries) when present
//! (CI always has it; a run without it says so and skips that part).

use std::path::Path;

use sqlite_vector::{Metric, NewItem, Profile, SearchParams, Shard};
use sqlite_vector_dataset::{recall_at_k, Dataset, GtMetric, QuerySet};

/// Builds an in-memory shard of `ds.base` (ids = row numbers) and returns the mean recall@10
/// and the worst query's recall.
fn exact_recall(ds: &Dataset, metric: Metric) -> (f64, f64) {
    let shard = Shard::in_memory(&Profile::new(ds.base.cols, metric)).unwrap();
    let items = (0..ds.base.rows)
        .map(|i| NewItem::new(ds.base.row(i).to_vec()).with_id(i.to_string()))
        .collect();
    shard.insert_batch(items).unwrap();
    let (mut sum, mut worst) = (0.0, 1.0f64);
    for qi in 0..ds.queries.rows {
        let hits = shard
            .search(ds.queries.row(qi), &SearchParams::k(10))
            .unwrap();
        assert_eq!(hits.len(), 10);
        let ids: Vec<usize> = hits.iter().map(|h| h.id.parse().unwrap()).collect();
        let dist: Vec<f32> = hits
            .iter()
            .map(|h| match metric {
                Metric::Cosine => 1.0 - h.score,
                _ => h.score * h.score,
            })
            .collect();
        let r = recall_at_k(&ids, &dist, ds.gt_ids.row(qi), ds.gt_dist.row(qi), 10);
        sum += r;
        worst = worst.min(r);
    }
    (sum / ds.queries.rows as f64, worst)
}

fn check_dir(dir: &Path, sets: &[QuerySet]) {
    for &qs in sets {
        for (gt, metric) in [(GtMetric::Cos, Metric::Cosine), (GtMetric::L2, Metric::L2)] {
            let ds = Dataset::load(dir, gt, qs).unwrap();
            let (mean, worst) = exact_recall(&ds, metric);
            assert_eq!(
                (mean, worst),
                (1.0, 1.0),
                "{}: {metric} {qs:?}: exact search must reach recall@10 = 1.0 on every query",
                dir.display()
            );
        }
    }
}

#[test]
fn sample_exact_recall_is_one() {
    check_dir(&crate::sample_dir(), &[QuerySet::Full]);
}

#[test]
fn debian_minilm_exact_recall_is_one() {
    match sqlite_vector_dataset::shared_dataset("debian-minilm") {
        Some(dir) => check_dir(&dir, &[QuerySet::Full, QuerySet::Short]),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must provide ../shared/data/debian-minilm beside the checkout")
        }
        None => eprintln!(
            "SKIPPED debian_minilm_exact_recall_is_one: ../shared/data/debian-minilm not found \
             (set SQLITE_VECTOR_DATA to its parent directory); only the shipped sample was checked"
        ),
    }
}

/// Known-item retrieval on debian-minilm: each synopsis must find its package among 25,000
/// descriptions. Hybrid (RRF of vector and BM25) must beat both rankings alone, and reach the
/// reference of FORMAT.md (MRR@10 0.970 for RRF of the two top-100 lists, k = 60).
#[test]
fn debian_minilm_hybrid_beats_vector_and_bm25_on_known_items() {
    use sqlite_vector::HybridParams;
    use sqlite_vector_dataset::{KnownItemScore, KnownItemSet};
    let dir = match sqlite_vector_dataset::shared_dataset("debian-minilm") {
        Some(dir) => dir,
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must provide ../shared/data/debian-minilm beside the checkout")
        }
        None => {
            eprintln!("SKIPPED known-item test: ../shared/data/debian-minilm not found");
            return;
        }
    };
    let set = KnownItemSet::load(&dir).unwrap();
    let base = sqlite_vector_dataset::read_f32(dir.join("base.npy")).unwrap();
    let shard = Shard::in_memory(&Profile::new(base.cols, Metric::Cosine)).unwrap();
    let items = (0..base.rows)
        .map(|i| {
            NewItem::new(base.row(i).to_vec())
                .with_id(i.to_string())
                .with_text(set.base_texts[i].text.clone())
        })
        .collect();
    shard.insert_batch(items).unwrap();
    let p = SearchParams::k(10);
    let h = HybridParams::default();
    let mut ranks = [Vec::new(), Vec::new(), Vec::new()];
    for q in &set.items {
        let v = set.vectors.row(q.query_id);
        let target = q.target_row.to_string();
        let lists = [
            shard.search(v, &p).unwrap(),
            shard.search_text(&q.query, &p).unwrap(),
            shard.search_hybrid(v, &q.query, &p, &h).unwrap(),
        ];
        for (r, hits) in ranks.iter_mut().zip(lists) {
            r.push(hits.iter().position(|x| x.id == target).map(|i| i + 1));
        }
    }
    let [vector, text, hybrid] = ranks.map(|r| KnownItemScore::from_ranks(&r));
    eprintln!("known-item MRR@10: vector {vector:?}, text {text:?}, hybrid {hybrid:?}");
    assert!(
        (vector.mrr_at_10 - 0.943).abs() < 0.005,
        "vector {vector:?}"
    );
    assert!((text.mrr_at_10 - 0.954).abs() < 0.005, "bm25 {text:?}");
    assert!(hybrid.mrr_at_10 > vector.mrr_at_10 && hybrid.mrr_at_10 > text.mrr_at_10);
    assert!(hybrid.mrr_at_10 >= 0.9695, "hybrid {hybrid:?}");
    assert_eq!(hybrid.hit_at_10, 1.0);
}
