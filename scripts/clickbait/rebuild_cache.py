import json, time
from intentrank.clickbait.scorer import load_default_scorer, DEFAULT_MODEL_DIR
from intentrank.data.webis import load_webis17
from intentrank.data.stop_clickbait import load_stop_clickbait
t = time.time()
s = load_default_scorer()
titles = load_webis17()["post_text"].tolist() + load_stop_clickbait()["title"].tolist()
s.build_cache(titles)
s.save(DEFAULT_MODEL_DIR)
print("cache rebuilt locally in", time.time() - t)
