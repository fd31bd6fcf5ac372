//! Exact search restricted to the query's language: the monolingual task on a pooled
//! corpus, without encoding each language's corpus again.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::exact::{ExactSearch, Hit};
use crate::quantized::{QuantizedMatrix, VectorDtype};

/// For each query (rows of `queries`, width `dim`), the top-k rows of `corpus` whose language
/// equals the query's, stored as `dtype`, ties broken by `ties` ascending as in
/// [`QuantizedMatrix::search`]. Row indices refer to the whole corpus. A query whose language
/// no row has gets no hits; languages are compared as given (None matches None).
#[allow(clippy::too_many_arguments)] // the search's inputs, each distinct; a struct would only rename them
pub fn search_within_lang(
    search: &ExactSearch,
    corpus: &[f32],
    row_langs: &[Option<&str>],
    ties: &[u32],
    queries: &[f32],
    query_langs: &[Option<&str>],
    dim: usize,
    dtype: VectorDtype,
) -> Result<Vec<Vec<Hit>>> {
    let mut rows_of: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, l) in row_langs.iter().enumerate() {
        rows_of.entry(*l).or_default().push(i);
    }
    let mut queries_of: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, l) in query_langs.iter().enumerate() {
        queries_of.entry(*l).or_default().push(i);
    }
    let mut out = vec![Vec::new(); query_langs.len()];
    for (lang, qs) in queries_of {
        let Some(rows) = rows_of.get(&lang) else {
            continue;
        };
        let sub: Vec<f32> = rows
            .iter()
            .flat_map(|&r| &corpus[r * dim..(r + 1) * dim])
            .copied()
            .collect();
        let sub_ties: Vec<u32> = rows.iter().map(|&r| ties[r]).collect();
        let q: Vec<f32> = qs
            .iter()
            .flat_map(|&i| &queries[i * dim..(i + 1) * dim])
            .copied()
            .collect();
        let index = QuantizedMatrix::quantize(&sub, dim, dtype)?;
        for (&qi, hits) in qs.iter().zip(index.search(search, &q, Some(&sub_ties))?) {
            out[qi] = hits
                .into_iter()
                .map(|h| Hit {
                    row: rows[h.row],
                    score: h.score,
                })
                .collect();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_query_sees_only_its_language_and_rows_keep_their_corpus_index() {
        // Row 0 (de) matches both queries best; the en query must skip it.
        let corpus = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.8, 0.2];
        let langs = [Some("de"), Some("en"), Some("de"), Some("en")];
        let ties = [0, 1, 2, 3];
        let queries = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let qlangs = [Some("en"), Some("de"), Some("fr")];
        let hits = search_within_lang(
            &ExactSearch::new(2),
            &corpus,
            &langs,
            &ties,
            &queries,
            &qlangs,
            2,
            VectorDtype::F32,
        )
        .unwrap();
        let rows = |i: usize| hits[i].iter().map(|h| h.row).collect::<Vec<_>>();
        assert_eq!(rows(0), [1, 3]);
        assert_eq!(rows(1), [0, 2]);
        assert!(hits[2].is_empty(), "no fr rows, no hits");
        let all = ExactSearch::new(1)
            .search(&queries[..2], &corpus, 2, Some(&ties))
            .unwrap();
        assert_eq!(all[0][0].row, 0, "unfiltered, the de row wins");
    }
}
