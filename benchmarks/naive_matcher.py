"""A naive matcher to compare the service with: TF-IDF of character 1-2-grams and one sparse
product, top 10 (no rules, no model, no explanations, no database).

    python benchmarks/naive_matcher.py PROGRAMS.csv PORT

``PROGRAMS.csv`` has the columns ``id``, ``title`` and ``text``; ``POST /match`` takes
``{"text": "..."}`` and answers the 10 programs whose vectors have the largest dot product
with the need's.
"""

import sys

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.feature_extraction.text import TfidfVectorizer

programs = pd.read_csv(sys.argv[1], dtype=str).fillna("")
vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2))
matrix = vectorizer.fit_transform(programs["title"] + " " + programs["text"]).T.tocsr()
app = FastAPI()


class Need(BaseModel):
    text: str


@app.post("/match")
def match(need: Need) -> list[dict]:
    scores = (vectorizer.transform([need.text]) @ matrix).toarray().ravel()
    top = np.argpartition(-scores, 10)[:10]
    top = top[np.argsort(-scores[top])]
    return [{"id": programs["id"].iat[i], "title": programs["title"].iat[i],
             "score": float(scores[i])} for i in top]


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
