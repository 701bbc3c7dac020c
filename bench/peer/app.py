"""The seed's stack done idiomatically, as a measuring stick for bench/side_by_side.sh (never imported by the app).

FastAPI + SQLAlchemy 2 ORM + pydantic 2 + PyJWT, as the seed describes it: a `get_db` session dependency, a
`get_current_user` dependency that verifies an HS256 JWT and loads its user, ORM models of our own tables
(`market_marketdata`, `accounts_user`), pydantic response models. No cache: every quote reads the latest candles.

    PEER_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/db PEER_JWT_SIGNING_KEY=... \
    gunicorn bench.peer.app:app -w 1 -k uvicorn.workers.UvicornWorker
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import BigInteger, Boolean, DateTime, Float, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DATABASE_URL = os.environ["PEER_DATABASE_URL"]
JWT_SIGNING_KEY = os.environ["PEER_JWT_SIGNING_KEY"]
SUFFIX = ".NS"

engine = create_engine(DATABASE_URL)  # QueuePool: 5 connections + 10 overflow, the defaults
SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "accounts_user"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254))
    is_active: Mapped[bool] = mapped_column(Boolean)


class MarketData(Base):
    __tablename__ = "market_marketdata"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(20))
    timeframe: Mapped[str] = mapped_column(String(3))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    open_price: Mapped[float] = mapped_column(Float)
    high_price: Mapped[float] = mapped_column(Float)
    low_price: Mapped[float] = mapped_column(Float)
    close_price: Mapped[float] = mapped_column(Float)
    volume: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(20))


class Quote(BaseModel):
    symbol: str
    price: float
    change: float | None
    change_percent: float | None
    open: float
    high: float
    low: float
    previous_close: float | None
    volume: int
    timestamp: datetime
    source: str


class Candle(BaseModel):
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


class Historical(BaseModel):
    symbol: str
    timeframe: str
    count: int
    candles: list[Candle]


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


bearer = HTTPBearer()


def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    db: Annotated[Session, Depends(get_db)],
) -> User:
    unauthorized = HTTPException(status.HTTP_401_UNAUTHORIZED, "Could not validate credentials")
    try:
        payload = jwt.decode(credentials.credentials, JWT_SIGNING_KEY, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise unauthorized from None
    user = db.get(User, int(payload.get("user_id", 0)))
    if user is None or not user.is_active:
        raise unauthorized
    return user


def full_symbol(symbol: str) -> str:
    symbol = symbol.strip().upper()
    return symbol if "." in symbol or symbol.startswith("^") else symbol + SUFFIX


app = FastAPI(title="peer")


@app.get("/api/market/quote/{symbol}", response_model=Quote)
def quote(
    symbol: str, user: Annotated[User, Depends(get_current_user)], db: Annotated[Session, Depends(get_db)]
) -> Quote:
    symbol = full_symbol(symbol)
    rows = db.scalars(
        select(MarketData)
        .where(MarketData.symbol == symbol, MarketData.timeframe == "1D")
        .order_by(MarketData.timestamp.desc())
        .limit(2)
    ).all()
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No data for {symbol}")
    last = rows[0]
    previous = rows[1].close_price if len(rows) > 1 else None
    change = last.close_price - previous if previous is not None else None
    return Quote(
        symbol=symbol,
        price=last.close_price,
        change=change,
        change_percent=change / previous * 100 if change is not None and previous else None,
        open=last.open_price,
        high=last.high_price,
        low=last.low_price,
        previous_close=previous,
        volume=last.volume,
        timestamp=last.timestamp,
        source=last.source,
    )


@app.get("/api/market/historical/{symbol}", response_model=Historical)
def historical(
    symbol: str,
    user: Annotated[User, Depends(get_current_user)],
    db: Annotated[Session, Depends(get_db)],
    timeframe: Annotated[str, Query(pattern="^(1m|5m|15m|1H|1D|1W)$")] = "1D",
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Historical:
    symbol = full_symbol(symbol)
    rows = db.scalars(
        select(MarketData)
        .where(MarketData.symbol == symbol, MarketData.timeframe == timeframe)
        .order_by(MarketData.timestamp.desc())
        .limit(limit)
    ).all()
    candles = [
        Candle(
            timestamp=r.timestamp,
            open=r.open_price,
            high=r.high_price,
            low=r.low_price,
            close=r.close_price,
            volume=r.volume,
        )
        for r in reversed(rows)
    ]
    return Historical(symbol=symbol, timeframe=timeframe, count=len(candles), candles=candles)
