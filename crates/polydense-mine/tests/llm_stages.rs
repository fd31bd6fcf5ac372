//! The LLM stages with a scripted model (answers read off the prompt) and a toy embedder:
//! what the judge drops and why, what the generator rejects, what RAG selection keeps, and
//! that the scores reach the training file and the counts the stats.

use polydense_data::{Document, Query};
use polydense_llm::{ChatRequest, Completion, LlmBackend, LlmClient, Sampling};
use polydense_mine::Embedder;
use polydense_mine::{
    Candidate, DedupFilter, LlmGenerate, LlmGenerateConfig, LlmJudge, LlmJudgeConfig, MineQuery,
    Mined, Miner, MinerStage, Pipeline, RagSelect, RagSelectConfig, Sampling as Pick, Silent,
};
use std::sync::Arc;

/// Answers by looking at the prompt: the judge by markers in the candidate, the generator
/// with a copy of the positive, a fresh passage and a one-word one, the selector with the
/// number after `rank` in the candidate.
struct Script;

impl LlmBackend for Script {
    fn id(&self) -> &str {
        "script"
    }

    fn complete(&self, r: &ChatRequest) -> polydense_llm::Result<Completion> {
        let system = &r.messages[0].content;
        let user = &r.messages[1].content;
        let candidate = user.split("Candidate passage: ").nth(1).unwrap_or("");
        let text = if system.starts_with("You write") {
            let positive = user
                .split("Positive passage: ")
                .nth(1)
                .unwrap()
                .split("\n\n")
                .next()
                .unwrap();
            serde_json::json!({"passages": [positive, "Volcanoes of Iceland erupt under glaciers and feed rivers.", "Short."]}).to_string()
        } else if system.starts_with("You select") {
            let rank: u32 = candidate
                .split("rank ")
                .nth(1)
                .and_then(|s| s[..1].parse().ok())
                .unwrap_or(5);
            format!("Score: {}/10", 9 - rank)
        } else if candidate.contains("ANSWER") {
            "{\"answers_query\": true, \"hardness\": 95}".into()
        } else if candidate.contains("EASY") {
            "```json\n{\"answers_query\": false, \"hardness\": 10}\n```".into()
        } else if candidate.contains("GARBLED") {
            "I would rather not say.".into()
        } else {
            "{\"answers_query\": false, \"hardness\": 80}".into()
        };
        Ok(Completion {
            text,
            ..Completion::default()
        })
    }

    fn models(&self) -> polydense_llm::Result<Vec<String>> {
        Ok(vec![])
    }
}

/// Proposes every corpus document but the positive, in corpus order.
struct All(Vec<String>);

impl Miner for All {
    fn source(&self) -> &str {
        "all"
    }
    fn mine(
        &self,
        queries: &[MineQuery],
        _: &(dyn Fn(u64) + Sync),
    ) -> polydense_mine::Result<Vec<Mined>> {
        Ok(queries
            .iter()
            .map(|q| Mined {
                candidates: self
                    .0
                    .iter()
                    .filter(|d| !q.positives.contains(d))
                    .enumerate()
                    .map(|(rank, d)| Candidate {
                        docid: d.clone(),
                        score: 10.0 - rank as f32,
                        source: "all".into(),
                        rank,
                        passage: None,
                        stage_scores: Default::default(),
                    })
                    .collect(),
                positive_scores: vec![Some(20.0)],
            })
            .collect())
    }
}

/// Letter counts: texts sharing letters are near.
struct Letters;

impl Embedder for Letters {
    fn embed(
        &self,
        texts: &[&str],
        _: polydense_model::TextKind,
    ) -> polydense_mine::Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = [0f32; 26];
                for c in t.to_lowercase().bytes().filter(u8::is_ascii_lowercase) {
                    v[(c - b'a') as usize] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

fn doc(id: &str, text: &str) -> Document {
    Document {
        id: id.into(),
        title: String::new(),
        text: text.into(),
        lang: None,
    }
}

fn corpus() -> Vec<Document> {
    vec![
        doc(
            "pos",
            "Mount Etna is an active volcano in Sicily, 3,357 metres high.",
        ),
        doc("fn", "ANSWER: Etna, Sicily's volcano, rises 3,357 metres."),
        doc("easy", "EASY: a recipe for lemon cake."),
        doc("bad", "GARBLED volcano text."),
        doc("h1", "Vesuvius is a volcano near Naples, rank 1."),
        doc("h2", "Stromboli erupts often, rank 2."),
        doc("h3", "Mount Fuji is a volcano in Japan, rank 3."),
        doc("h4", "Kilimanjaro is a dormant volcano, rank 4."),
    ]
}

fn pipeline(rag: bool) -> Pipeline {
    let client = Arc::new(LlmClient::new(Box::new(Script), None, Sampling::default()));
    let mut filters: Vec<Box<dyn polydense_mine::Filter>> = vec![
        Box::new(DedupFilter {
            by_id: true,
            by_text: true,
        }),
        Box::new(LlmJudge {
            config: LlmJudgeConfig::default(),
            client: client.clone(),
        }),
    ];
    if rag {
        filters.push(Box::new(RagSelect {
            config: RagSelectConfig::default(),
            embedder: Box::new(Letters),
            client: client.clone(),
        }));
    }
    Pipeline {
        miners: vec![MinerStage {
            miner: Box::new(All(corpus().into_iter().map(|d| d.id).collect())),
            n: 10,
            sampling: Pick::Top,
        }],
        filters,
        generators: vec![Box::new(LlmGenerate {
            config: LlmGenerateConfig::default(),
            client: client.clone(),
        })],
        seed: 1,
        min_negatives: 1,
        llm: Some(client),
    }
}

fn query() -> Vec<MineQuery> {
    vec![MineQuery {
        query: Query {
            id: "q".into(),
            text: "How high is Mount Etna?".into(),
            lang: Some("en".into()),
        },
        positives: vec!["pos".into()],
    }]
}

#[test]
fn the_judge_drops_false_and_easy_negatives_and_the_generator_copies() {
    let (ex, stats) = pipeline(false).run(&query(), &corpus(), &Silent).unwrap();
    let ids: Vec<&str> = ex[0]
        .negative_passages
        .iter()
        .map(|p| p.docid.as_str())
        .collect();
    // fn answers the query, easy is easy; bad is unjudged and kept; h1-h4 and one generated.
    assert_eq!(ids, vec!["bad", "h1", "h2", "h3", "h4", "q:llm_generate:0"]);
    let judge = &stats.dropped["llm_judge"];
    assert_eq!(judge["answers the query (false negative)"], 1);
    assert_eq!(judge["easy (hardness below the threshold)"], 1);
    let gen = &stats.dropped["llm_generate"];
    assert_eq!(gen["copies the positive (word overlap above the cap)"], 1);
    assert_eq!(gen["too short"], 1);
    assert_eq!(stats.proposed["llm_generate"], 1);
    let h1 = &ex[0].negative_passages[1];
    assert_eq!(h1.stage_scores["llm_judge.hardness"], 80.0);
    assert!(
        ex[0].negative_passages[0].stage_scores.is_empty(),
        "unjudged: no scores"
    );
    let counts = &stats.counters["llm_judge"];
    // 7 mined + 1 generated judged; the garbled one was reminded once, then skipped.
    assert_eq!(
        (counts["items"], counts["reminders"], counts["skipped"]),
        (8, 1, 1)
    );
    assert_eq!(stats.stage_scores["llm_judge.hardness"].count, 5);
}

#[test]
fn rag_selection_keeps_the_best_half_of_the_scored_candidates() {
    let (ex, stats) = pipeline(true).run(&query(), &corpus(), &Silent).unwrap();
    let ids: Vec<&str> = ex[0]
        .negative_passages
        .iter()
        .map(|p| p.docid.as_str())
        .collect();
    // Scored: h1 8, h2 7, h3 6, h4 5, and 4 for bad and the generated one (no rank); the
    // best ceil(6/2) = 3 stay, in their original order.
    assert_eq!(ids, vec!["h1", "h2", "h3"]);
    assert_eq!(stats.dropped["rag_select"]["below the kept fraction"], 3);
    assert_eq!(
        ex[0].negative_passages[0].stage_scores["rag_select.score"],
        80.0
    );
}

/// Writes a question from the passage's first word, counting its calls; garbles on request.
struct Doc2Query(std::sync::atomic::AtomicUsize);

impl LlmBackend for Doc2Query {
    fn id(&self) -> &str {
        "doc2query"
    }

    fn complete(&self, r: &ChatRequest) -> polydense_llm::Result<Completion> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(r.messages[0].content.contains("in German"));
        let passage = r.messages[1].content.split("Passage: ").nth(1).unwrap();
        let first = passage.split_whitespace().next().unwrap();
        let text = match passage.contains("GARBLED") {
            true => "No idea.".to_string(),
            false => format!("{{\"question\": \"Was ist {first}?\"}}"),
        };
        Ok(Completion {
            text,
            ..Completion::default()
        })
    }

    fn models(&self) -> polydense_llm::Result<Vec<String>> {
        Ok(vec![])
    }
}

#[test]
fn the_llm_writes_a_query_once_per_passage_left_without_one() {
    use polydense_data::{TrainExample, TrainPassage};
    let neg = |id: &str, text: &str, query: Option<&str>| TrainPassage {
        docid: id.into(),
        text: text.into(),
        query: query.map(str::to_string),
        ..TrainPassage::default()
    };
    let mut examples = vec![
        TrainExample {
            query_id: "q1".into(),
            negative_passages: vec![
                neg("p1", "Berlin liegt an der Spree.", Some("from the qrels")),
                neg("p2", "Hamburg hat einen Hafen.", None),
            ],
            ..TrainExample::default()
        },
        TrainExample {
            query_id: "q2".into(),
            negative_passages: vec![
                neg("p2", "Hamburg hat einen Hafen.", None),
                neg("p3", "GARBLED text here.", None),
            ],
            ..TrainExample::default()
        },
    ];
    let backend = Doc2Query(Default::default());
    let client = LlmClient::new(Box::new(backend), None, Sampling::default());
    let langs = std::collections::HashMap::from([("p2", "de"), ("p3", "de")]);
    let mut log = polydense_mine::DropLog::default();
    let n = polydense_mine::attach_from_llm(
        &mut examples,
        &client,
        &polydense_mine::NegativeQueriesConfig {
            llm: true,
            ..Default::default()
        },
        &langs,
        &mut log,
        &Silent,
    )
    .unwrap();
    // p2 twice (asked once), p3 unreadable even after the reminder; p1 kept its own.
    assert_eq!(n, 2);
    let q = |e: usize, i: usize| examples[e].negative_passages[i].query.clone();
    assert_eq!(q(0, 0).as_deref(), Some("from the qrels"));
    assert_eq!(q(0, 1).as_deref(), Some("Was ist Hamburg?"));
    assert_eq!(q(1, 0).as_deref(), Some("Was ist Hamburg?"));
    assert_eq!(q(1, 1), None);
    assert!(!log.counters["negative_queries"].is_empty(), "{log:?}");
}
