SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  (
    (
      "u"."city" = {p0: String}
      AND "u"."user_id" IN (
        SELECT
          "e1"."user_id"
        FROM "p1_events" AS "e1"
        WHERE
          "e1"."event" = {p3: String}
          AND "e1"."time" >= {p1: DateTime64(6)}
          AND "e1"."time" < {p2: DateTime64(6)}
        GROUP BY
          "e1"."user_id"
        HAVING
          COUNT(*) >= {p4: Float64}
      )
    )
    OR (
      "u"."total_assets" >= {p5: Float64}
      AND NOT (
        "u"."user_id" IN (
          SELECT
            "e2"."user_id"
          FROM "p1_events" AS "e2"
          WHERE
            "e2"."event" = {p8: String}
            AND "e2"."time" >= {p6: DateTime64(6)}
            AND "e2"."time" < {p7: DateTime64(6)}
        )
      )
    )
  )
