"""RAG with LlamaIndex: SimpleDirectoryReader + SentenceSplitter + VectorStoreIndex over FaissVectorStore, one GemModel.

Run from the repository root (offline; the bundled corpus is integrations/corpus/):
    python -m integrations.llama_index_faiss "How do I create a virtual environment?"
"""

from __future__ import annotations

import sys

import faiss
from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.vector_stores.faiss import FaissVectorStore

from gem_rag.llama_index import GemEmbedding, GemLLM
from integrations.common import CORPUS_DIR, SYSTEM_PROMPT, parse_args, print_answer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    documents = SimpleDirectoryReader(str(CORPUS_DIR), required_exts=[".txt"]).load_data()
    embed_model = GemEmbedding()                                   # the shared default model embeds...
    llm = GemLLM(max_tokens=args.max_tokens, system_prompt=SYSTEM_PROMPT)  # ...and the same instance answers
    vector_store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(embed_model.model.embedding_dim))  # unit vectors
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=vector_store), embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32)])
    response = index.as_query_engine(llm=llm, similarity_top_k=args.top_k).query(args.question)
    print_answer(args.question, response.response, (node.metadata["file_name"] for node in response.source_nodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
