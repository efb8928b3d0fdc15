"""RAG with LangChain: TextLoader + text splitter + Chroma (langchain_chroma, embedded, temp dir) + LCEL, one GemModel.

Run from the repository root (offline; the bundled corpus is integrations/corpus/):
    python -m integrations.langchain_chroma "How do I create a virtual environment?"
"""

from __future__ import annotations

import sys
import tempfile

import chromadb
from chromadb.config import Settings
from langchain_chroma import Chroma
from langchain_community.document_loaders import DirectoryLoader, TextLoader
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_text_splitters import RecursiveCharacterTextSplitter

from gem_rag.langchain import GemChatModel, GemEmbeddings
from integrations.common import CORPUS_DIR, SYSTEM_PROMPT, parse_args, print_answer

PROMPT = ChatPromptTemplate.from_messages(
    [("system", SYSTEM_PROMPT), ("human", "Context:\n{context}\n\nQuestion: {question}")])


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(doc.page_content for doc in docs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    documents = DirectoryLoader(str(CORPUS_DIR), glob="*.txt", loader_cls=TextLoader).load()
    chunks = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=100).split_documents(documents)
    with tempfile.TemporaryDirectory(prefix="gem-rag-chroma-") as folder:
        client = chromadb.PersistentClient(path=folder, settings=Settings(anonymized_telemetry=False))
        store = Chroma(client=client, collection_name="python_tutorial", embedding_function=GemEmbeddings(),
                       collection_metadata={"hnsw:space": "cosine"})
        store.add_documents(chunks)
        retriever = store.as_retriever(search_kwargs={"k": args.top_k})
        chat = GemChatModel(max_tokens=args.max_tokens)  # the same shared GemModel as the embeddings

        answer_chain = {"context": lambda x: format_docs(x["docs"]), "question": lambda x: x["question"]} \
            | PROMPT | chat | StrOutputParser()
        chain = {"docs": retriever, "question": RunnablePassthrough()} | RunnablePassthrough.assign(answer=answer_chain)
        result = chain.invoke(args.question)
    print_answer(args.question, result["answer"], (doc.metadata["source"].rsplit("/", 1)[-1] for doc in result["docs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
