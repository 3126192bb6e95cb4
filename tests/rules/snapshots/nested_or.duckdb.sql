SELECT
  COUNT(*)
FROM "p1_users" AS "u"
WHERE
  (
    (
      "u"."city" = $p0
      AND "u"."user_id" IN (
        SELECT
          "e1"."user_id"
        FROM "p1_events" AS "e1"
        WHERE
          "e1"."event" = $p3 AND "e1"."time" >= $p1 AND "e1"."time" < $p2
        GROUP BY
          "e1"."user_id"
        HAVING
          COUNT(*) >= $p4
      )
    )
    OR (
      "u"."total_assets" >= $p5
      AND NOT "u"."user_id" IN (
        SELECT
          "e2"."user_id"
        FROM "p1_events" AS "e2"
        WHERE
          "e2"."event" = $p8 AND "e2"."time" >= $p6 AND "e2"."time" < $p7
      )
    )
  )
