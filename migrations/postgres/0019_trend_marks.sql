-- What members said about a trend's points: a build excluded from its
-- series (kept and shown, never fitted), or the change at a build
-- acknowledged (looked at; shown as such, no longer the series' news).
CREATE TABLE trend_marks (
    series_id TEXT NOT NULL,
    build TEXT NOT NULL,
    kind TEXT NOT NULL,
    marked_by TEXT NOT NULL,
    marked_at BIGINT NOT NULL,
    PRIMARY KEY (series_id, build, kind)
);
