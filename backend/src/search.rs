//! Catalog search: an in-memory index ranked by title, category, fabric, colour and occasion, with a result cache.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use bytes::Bytes;
use serde::Serialize;

use crate::product::Product;

/// Weights of title, category, fabric, colour and occasion: a query word equal to a word of the field
/// scores twice the weight, a prefix of one (three letters or more) scores the weight.
const WEIGHTS: [u32; 5] = [10, 6, 5, 4, 3];
/// Each query word that matches anywhere outranks any difference in field weights.
const PER_MATCHED_WORD: u32 = 1000;
const CACHE_CAPACITY: usize = 4096;

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub handle: String,
    pub title: String,
    pub category: String,
    pub price: i64,
    pub stock: i32,
    pub image_url: String,
    pub fabric: String,
    pub color: String,
    pub occasion: String,
    pub score: u32,
}

struct Entry {
    hit: Hit,
    words: [Vec<String>; 5],
}

/// The searchable form of the catalog.
#[derive(Default)]
pub struct SearchIndex {
    entries: Vec<Entry>,
}

/// The words of a text: lowercase runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl SearchIndex {
    pub fn new(products: &[Product]) -> Self {
        let entries = products
            .iter()
            .map(|p| Entry {
                hit: Hit {
                    handle: p.handle.clone(),
                    title: p.title.clone(),
                    category: p.category.clone(),
                    price: p.price,
                    stock: p.stock,
                    image_url: p.image_url.clone(),
                    fabric: p.fabric.clone(),
                    color: p.color.clone(),
                    occasion: p.occasion.clone(),
                    score: 0,
                },
                words: [
                    words(&p.title),
                    words(&p.category),
                    words(&p.fabric),
                    words(&p.color),
                    words(&p.occasion),
                ],
            })
            .collect();
        Self { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Products matching any query word, best first (ties by title, then handle).
    pub fn search(&self, terms: &[String], limit: usize) -> (usize, Vec<Hit>) {
        let mut scored: Vec<(u32, &Entry)> = self
            .entries
            .iter()
            .filter_map(|entry| {
                let score = score(entry, terms);
                (score > 0).then_some((score, entry))
            })
            .collect();
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.hit.title.cmp(&b.1.hit.title))
                .then_with(|| a.1.hit.handle.cmp(&b.1.hit.handle))
        });
        let total = scored.len();
        let hits = scored
            .into_iter()
            .take(limit)
            .map(|(score, entry)| Hit {
                score,
                ..entry.hit.clone()
            })
            .collect();
        (total, hits)
    }
}

fn score(entry: &Entry, terms: &[String]) -> u32 {
    let mut total = 0;
    for term in terms {
        let mut term_score = 0;
        for (field, weight) in entry.words.iter().zip(WEIGHTS) {
            if field.iter().any(|w| w == term) {
                term_score += weight * 2;
            } else if term.chars().count() >= 3
                && field.iter().any(|w| w.starts_with(term.as_str()))
            {
                term_score += weight;
            }
        }
        if term_score > 0 {
            total += PER_MATCHED_WORD + term_score;
        }
    }
    total
}

struct State {
    index: Arc<SearchIndex>,
    generation: u64,
    cache: HashMap<String, Bytes>,
}

/// The current index and the cache of rendered answers; replacing the index empties the cache.
pub struct Search {
    state: RwLock<State>,
}

/// Whether an answer came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        }
    }
}

impl Default for Search {
    fn default() -> Self {
        Self {
            state: RwLock::new(State {
                index: Arc::new(SearchIndex::default()),
                generation: 0,
                cache: HashMap::new(),
            }),
        }
    }
}

impl Search {
    /// Installs a new index and forgets every cached answer.
    pub fn replace(&self, index: SearchIndex) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.index = Arc::new(index);
        state.generation += 1;
        state.cache.clear();
    }

    /// Empties the cache; returns how many answers it held.
    pub fn flush(&self) -> usize {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let flushed = state.cache.len();
        state.cache.clear();
        state.generation += 1;
        flushed
    }

    pub fn catalog_size(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .index
            .len()
    }

    /// The answer for `key` from the cache, or rendered by `render` from the index and cached.
    pub fn answer<E>(
        &self,
        key: &str,
        render: impl FnOnce(&SearchIndex) -> Result<Bytes, E>,
    ) -> Result<(Bytes, CacheOutcome), E> {
        let (index, generation) = {
            let state = self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(body) = state.cache.get(key) {
                return Ok((body.clone(), CacheOutcome::Hit));
            }
            (state.index.clone(), state.generation)
        };
        let body = render(&index)?;
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.generation == generation {
            if state.cache.len() >= CACHE_CAPACITY {
                state.cache.clear();
            }
            state.cache.insert(key.to_owned(), body.clone());
        }
        Ok((body, CacheOutcome::Miss))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn product(
        handle: &str,
        title: &str,
        category: &str,
        fabric: &str,
        color: &str,
        occasion: &str,
    ) -> Product {
        Product {
            handle: handle.into(),
            title: title.into(),
            category: category.into(),
            department: "Women".into(),
            price: 100,
            stock: 1,
            image_url: String::new(),
            fabric: fabric.into(),
            occasion: occasion.into(),
            color: color.into(),
            work_type: String::new(),
            dispatch_time: String::new(),
            return_eligible: true,
            description: String::new(),
            seo_title: String::new(),
            seo_description: String::new(),
            hero_prompt: String::new(),
            detail_prompt: String::new(),
            lifestyle_prompt: String::new(),
        }
    }

    #[test]
    fn title_outranks_fabric_and_more_words_outrank_fewer() {
        let index = SearchIndex::new(&[
            product("a", "Blue Kurta", "kurtas", "Silk", "Blue", "Party"),
            product("b", "Red Silk Saree", "sarees", "Cotton", "Red", "Wedding"),
            product("c", "Green Lehenga", "lehengas", "Net", "Green", "Festive"),
            product("d", "Red Kurta", "kurtas", "Silk", "Red", "Casual"),
        ]);
        let (total, hits) = index.search(&words("silk"), 10);
        assert_eq!(total, 3);
        assert_eq!(hits[0].handle, "b");
        let (_, hits) = index.search(&words("red silk"), 10);
        let order: Vec<&str> = hits.iter().map(|h| h.handle.as_str()).collect();
        assert_eq!(order, ["b", "d", "a"]);
    }

    #[test]
    fn cache_hits_until_replaced() {
        let search = Search::default();
        search.replace(SearchIndex::new(&[product("a", "Silk", "x", "", "", "")]));
        let render = |i: &SearchIndex| Ok::<_, ()>(Bytes::from(i.len().to_string()));
        assert_eq!(search.answer("silk", render).unwrap().1, CacheOutcome::Miss);
        assert_eq!(search.answer("silk", render).unwrap().1, CacheOutcome::Hit);
        assert_eq!(search.flush(), 1);
        assert_eq!(search.answer("silk", render).unwrap().1, CacheOutcome::Miss);
        search.replace(SearchIndex::default());
        let (body, outcome) = search.answer("silk", render).unwrap();
        assert_eq!(
            (body.as_ref(), outcome),
            (b"0".as_ref(), CacheOutcome::Miss)
        );
    }
}
