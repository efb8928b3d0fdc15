"""RAG with LlamaIndex: SimpleDirectoryReader + SentenceSplitter + ChromaVectorStore (embedded, temp dir), one GemModel.

Run from the repository root (offline; the bundled corpus is integrations/corpus/):
    python -m integrations.llama_index_chroma "How do I create a virtual environment?"
"""

from __future__ import annotations

import sys
import tempfile

import chromadb
from chromadb.config import Settings
from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.vector_stores.chroma import ChromaVectorStore

from gem_rag.llama_index import GemEmbedding, GemLLM
from integrations.common import CORPUS_DIR, SYSTEM_PROMPT, parse_args, print_answer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    documents = SimpleDirectoryReader(str(CORPUS_DIR), required_exts=[".txt"]).load_data()
    embed_model = GemEmbedding()                                   # the shared default model embeds...
    llm = GemLLM(max_tokens=args.max_tokens, system_prompt=SYSTEM_PROMPT)  # ...and the same instance answers
    with tempfile.TemporaryDirectory(prefix="gem-rag-chroma-") as folder:
        client = chromadb.PersistentClient(path=folder, settings=Settings(anonymized_telemetry=False))
        collection = client.get_or_create_collection("python_tutorial", metadata={"hnsw:space": "cosine"})
        index = VectorStoreIndex.from_documents(
            documents, storage_context=StorageContext.from_defaults(vector_store=ChromaVectorStore(collection)),
            embed_model=embed_model, transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32)])
        response = index.as_query_engine(llm=llm, similarity_top_k=args.top_k).query(args.question)
    print_answer(args.question, response.response, (node.metadata["file_name"] for node in response.source_nodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
